/* Workload for bench/bench_ingest.py: exactly TOTAL page faults.
 *
 * Touches NPAGES anonymous pages one after another, then drops them with
 * MADV_DONTNEED so the next pass faults again; stops after TOTAL touches.
 * Usage: pagefault_loop TOTAL [NPAGES]
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
	long total = argc > 1 ? atol(argv[1]) : 1000000;
	long npages = argc > 2 ? atol(argv[2]) : 4096;
	long psz = 4096, done = 0;
	char *p = mmap(NULL, npages * psz, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	madvise(p, npages * psz, MADV_NOHUGEPAGE);
	while (done < total) {
		long n = total - done < npages ? total - done : npages;
		for (long i = 0; i < n; i++)
			p[i * psz] = (char)i;
		done += n;
		madvise(p, npages * psz, MADV_DONTNEED);
	}
	return 0;
}
