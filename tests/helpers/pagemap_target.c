/* Test target for pagemap capture: a buffer with a known set of touched pages.
 *
 * usage: pagemap_target MODE NPAGES [EXIT_AFTER_MS]
 *   MODE "pattern": NPAGES 4 KiB pages (MADV_NOHUGEPAGE); page i is written iff i % 3 != 2
 *   MODE "thp":     NPAGES 4 KiB pages in a 2 MiB-aligned buffer with MADV_HUGEPAGE, all written
 *   MODE "fill":    NPAGES 4 KiB pages (MADV_NOHUGEPAGE), all written (benchmarks)
 *
 * Prints "buf 0x<addr> <npages>", then (when it can read its own frames, and for at
 * most 100000 pages) one line "pfn <index> <pfn>" per present page read from
 * /proc/self/pagemap, then "ready".
 * Then it obeys one-letter commands on stdin, answering each with a line:
 *   u  munmap the second half of the buffer   -> "unmapped"
 *   q  exit                                    (also on EOF)
 * With EXIT_AFTER_MS it does not read stdin and exits after that many ms.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define HUGE (2UL << 20)

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s pattern|thp NPAGES [EXIT_AFTER_MS]\n", argv[0]);
		return 2;
	}
	int thp = strcmp(argv[1], "thp") == 0;
	int fill = strcmp(argv[1], "fill") == 0;
	size_t npages = strtoul(argv[2], NULL, 0);
	size_t len = npages * PAGE;
	size_t map_len = thp ? len + HUGE : len;
	char *raw = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	char *buf = raw;
	if (thp) {
		buf = (char *)(((uintptr_t)raw + HUGE - 1) & ~(HUGE - 1));
		/* trim so the buffer is its own VMA */
		if (buf > raw)
			munmap(raw, buf - raw);
		if (raw + map_len > buf + len)
			munmap(buf + len, raw + map_len - (buf + len));
		madvise(buf, len, MADV_HUGEPAGE);
	} else {
		madvise(buf, len, MADV_NOHUGEPAGE);
	}
	for (size_t i = 0; i < npages; i++)
		if (thp || fill || i % 3 != 2)
			buf[i * PAGE] = (char)(i | 1);

	printf("buf 0x%lx %zu\n", (unsigned long)buf, npages);
	int fd = npages <= 100000 ? open("/proc/self/pagemap", O_RDONLY) : -1;
	if (fd >= 0) {
		for (size_t i = 0; i < npages; i++) {
			uint64_t e;
			off_t off = ((uintptr_t)buf / PAGE + i) * sizeof(e);
			if (pread(fd, &e, sizeof(e), off) != sizeof(e))
				break;
			uint64_t pfn = e & ((1ULL << 55) - 1);
			if ((e >> 63) & 1 && pfn)
				printf("pfn %zu %llu\n", i, (unsigned long long)pfn);
		}
		close(fd);
	}
	printf("ready\n");
	fflush(stdout);

	if (argc > 3) {
		long ms = strtol(argv[3], NULL, 0);
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
		return 0;
	}
	int c;
	while ((c = getchar()) != EOF) {
		if (c == 'q')
			break;
		if (c == 'u') {
			munmap(buf + len / 2, len - len / 2);
			printf("unmapped\n");
			fflush(stdout);
		}
	}
	return 0;
}
