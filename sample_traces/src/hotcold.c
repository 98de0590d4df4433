/* hotcold: a workload with a known memory layout, for tracedamon's sample traces.
 *
 * It maps one anonymous area at a fixed address (0x200000000000 by default):
 *   hot  : the first HOT pages, touched every PERIOD_MS milliseconds for DURATION_MS
 *   cold : the next COLD pages, touched once at the start and never again
 * After each pass over the hot pages they are dropped with MADV_DONTNEED, so the
 * next touch faults again: a `perf record -e page-faults -d` of this program has one
 * sample per hot page per pass, and one per cold page in all.
 *
 * usage: hotcold [-h HOT] [-c COLD] [-p PERIOD_MS] [-d DURATION_MS] [-a ADDR]
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	long hot = 32, cold = 256, period = 10, duration = 2000;
	unsigned long base = 0x200000000000UL;
	long page = sysconf(_SC_PAGESIZE);
	int opt;

	while ((opt = getopt(argc, argv, "h:c:p:d:a:")) != -1) {
		switch (opt) {
		case 'h': hot = atol(optarg); break;
		case 'c': cold = atol(optarg); break;
		case 'p': period = atol(optarg); break;
		case 'd': duration = atol(optarg); break;
		case 'a': base = strtoul(optarg, NULL, 0); break;
		default:
			fprintf(stderr, "usage: %s [-h HOT] [-c COLD] [-p MS] [-d MS] [-a ADDR]\n", argv[0]);
			return 2;
		}
	}
	size_t len = (size_t)(hot + cold) * page;
	char *p = mmap((void *)base, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	madvise(p, len, MADV_NOHUGEPAGE);
	fprintf(stderr, "hotcold base=%p hot=%ld cold=%ld page=%ld\n", (void *)p, hot, cold, page);
	char *c = p + hot * page;
	for (long i = 0; i < cold; i++)
		c[i * page] = 1;
	double end = now_ms() + duration;
	long passes = 0;
	while (now_ms() < end) {
		for (long i = 0; i < hot; i++)
			p[i * page] = (char)passes;
		madvise(p, hot * page, MADV_DONTNEED);
		passes++;
		usleep(period * 1000);
	}
	fprintf(stderr, "hotcold passes=%ld\n", passes);
	return 0;
}
