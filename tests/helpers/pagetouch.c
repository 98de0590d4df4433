/*
 * pagetouch: the workload of the test suite's perf recordings (tests/perf_corpus.py).
 *
 * Maps PAGES anonymous pages at 0x100000000000 (or where the kernel likes, -a 0) and
 * writes one byte to each page once, so each first write is one page fault at
 * base + page * 4096.  The order of the pages and who writes them are options:
 *
 *   -n PAGES   how many pages (64)
 *   -a ADDR    where to map them (0 = anywhere)
 *   -o ORDER   asc (0, 1, 2, ...), desc, or stride7 (page i*7 mod PAGES)
 *   -t N       N threads, one after the other, each writing its own share of the pages
 *   -H         ask for transparent huge pages (MADV_HUGEPAGE); else MADV_NOHUGEPAGE
 *
 * It reports "pagetouch base=0x... pages=N" on stderr.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define PAGE 4096UL

struct share {
	volatile unsigned char *mem;
	unsigned long first, count;
	int order;		/* 0 asc, 1 desc, 2 stride7 */
};

static void *write_share(void *arg)
{
	struct share *s = arg;

	for (unsigned long k = 0; k < s->count; k++) {
		unsigned long page;

		if (s->order == 1)
			page = s->count - 1 - k;
		else if (s->order == 2)
			page = (k * 7) % s->count;
		else
			page = k;
		s->mem[(s->first + page) * PAGE] = (unsigned char)(page | 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long pages = 64, addr = 0x100000000000UL;
	int threads = 0, huge = 0, order = 0, c;

	while ((c = getopt(argc, argv, "n:a:o:t:H")) != -1) {
		if (c == 'n')
			pages = strtoul(optarg, NULL, 0);
		else if (c == 'a')
			addr = strtoul(optarg, NULL, 0);
		else if (c == 'o')
			order = !strcmp(optarg, "desc") ? 1 : !strcmp(optarg, "stride7") ? 2 : 0;
		else if (c == 't')
			threads = atoi(optarg);
		else if (c == 'H')
			huge = 1;
		else
			return 2;
	}
	if (!pages || (order == 2 && pages % 7 == 0)) {
		fprintf(stderr, "pagetouch: bad page count\n");
		return 2;
	}
	void *mem = mmap((void *)addr, pages * PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | (addr ? MAP_FIXED_NOREPLACE : 0), -1, 0);
	if (mem == MAP_FAILED) {
		perror("pagetouch: mmap");
		return 1;
	}
	madvise(mem, pages * PAGE, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	fprintf(stderr, "pagetouch base=%p pages=%lu\n", mem, pages);

	if (threads <= 0) {
		struct share all = { mem, 0, pages, order };
		write_share(&all);
	} else {
		for (int t = 0; t < threads; t++) {
			struct share s = { mem, pages * t / threads,
					   pages * (t + 1) / threads - pages * t / threads, order };
			pthread_t th;

			if (pthread_create(&th, NULL, write_share, &s))
				return 1;
			pthread_join(th, NULL);	/* one at a time: a fixed order of faults */
		}
	}
	munmap(mem, pages * PAGE);
	return 0;
}
