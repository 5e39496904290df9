// epollref does the work of the C reference's vmsplice modes
// (shared/bench/pipebench.c -m vmsplice -T): a writer thread vmsplices
// chunks, with a byte written in every 4 KiB page of a chunk before each
// vmsplice, and a reader thread splices the pipe to /dev/null. The chunks
// are two, refilled in turn (pipebench's -W), or with -F a ring over two
// runs of 2 MiB (or of the chunk's size, if larger), each run given fresh
// pages with madvise(MADV_DONTNEED) when the writer comes back to it
// (pipebench's -F). They are in transparent huge pages, or with -H none
// in 4 KiB pages, as a Go heap buffer is where transparent huge pages are
// set to "madvise" (with "always" it may get huge pages). Both threads
// retry EAGAIN at once (pipebench's -n); with -s they sleep in the kernel
// instead (blocking calls, pipebench's default).
//
// With -E, the pipe's two ends are also registered in an epoll set, as the
// Go runtime's poller registers every non-blocking *os.File
// (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET), and a third thread harvests the set
// every 10 ms without waiting, as the Go runtime's sysmon does in a program
// whose goroutines never park (then nothing else polls: the scheduler polls
// the network only while a goroutine is parked in the poller). A pipe's poll
// puts the read end on the pipe's reader queue and the write end on its
// writer queue (pipe_poll, fs/pipe.c); each vmsplice(2) wakes the reader
// queue, and each splice that frees a slot the writer queue, with no event
// key (wakeup_pipe_readers and wakeup_pipe_writers, fs/splice.c): one of the
// set's callbacks runs on every call that moves data. A Go program with a
// thread blocked in epoll_wait, which every callback then wakes, pays more:
// -E is the least the poller costs. BENCHMARKS.md, "C with its pipe in an
// epoll set", says what -E costs.
//
//   cc -O2 -pthread -o epollref testdata/epollref.c
//   ./epollref -b 64k -p 64k -t 1 [-F] [-H none] [-s] [-E]
//
// Prints: epollref,<buf>,<pipe>,<epoll 0|1>,<W|F>,<thp|none>,<busy 1|0>,
// <bytes>,<secs>,<GB/s>.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static atomic_int stop;

// What the reader thread needs, and what it moved: its own cache line, so
// that its count does not share one with what the writer reads.
struct reader_args {
	_Alignas(64) int fd, pipe_size;
	unsigned flags; // SPLICE_F_NONBLOCK, or 0 to sleep in the kernel
	unsigned long long got;
};

static void die(const char *what) {
	perror(what);
	exit(1);
}

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *reader(void *arg) {
	struct reader_args *a = arg;
	int fd = a->fd;
	size_t len = (size_t)a->pipe_size;
	unsigned long long got = 0;
	int null = open("/dev/null", O_WRONLY);
	if (null < 0)
		die("open /dev/null");
	for (;;) {
		ssize_t n = splice(fd, NULL, null, NULL, len, a->flags);
		if (n > 0) {
			got += (unsigned long long)n;
		} else if (n == 0) {
			a->got = got; // the writer closed its end
			return NULL;
		} else if (errno != EAGAIN && errno != EINTR) {
			die("splice");
		}
	}
}

static void *harvester(void *arg) {
	int epfd = *(int *)arg;
	struct epoll_event evs[8];
	struct timespec ten = {0, 10 * 1000 * 1000};
	while (!atomic_load(&stop)) {
		if (epoll_wait(epfd, evs, 8, 0) < 0 && errno != EINTR)
			die("epoll_wait");
		nanosleep(&ten, NULL);
	}
	return NULL;
}

// size parses a count of bytes with an optional k or m (KiB, MiB).
static size_t size(const char *s) {
	char *end;
	unsigned long long n = strtoull(s, &end, 0);
	if (end == s)
		goto bad;
	if (*end == 'k' || *end == 'K')
		n <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		n <<= 20, end++;
	if (*end != '\0' || n == 0 || n > (1ULL << 31))
		goto bad;
	return (size_t)n;
bad:
	fprintf(stderr, "epollref: bad size %s\n", s);
	exit(2);
}

int main(int argc, char **argv) {
	int use_epoll = 0, fresh = 0, sleeps = 0, huge_pages = 1, opt, epfd = -1;
	double secs = 1;
	size_t chunk = 64 << 10;
	int pipe_size = 64 << 10;
	while ((opt = getopt(argc, argv, "b:p:t:H:FsE")) != -1) {
		switch (opt) {
		case 'b': chunk = size(optarg); break;
		case 'p': pipe_size = (int)size(optarg); break;
		case 't': {
			char *end;
			secs = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || !(secs > 0))
				goto usage;
			break;
		}
		case 'H':
			if (strcmp(optarg, "none") == 0)
				huge_pages = 0;
			else if (strcmp(optarg, "thp") != 0)
				goto usage;
			break;
		case 'F': fresh = 1; break;
		case 's': sleeps = 1; break;
		case 'E': use_epoll = 1; break;
		default:
			goto usage;
		}
	}
	if (optind != argc)
		goto usage;
	int fds[2];
	if (pipe2(fds, O_CLOEXEC | (sleeps ? 0 : O_NONBLOCK)) != 0)
		die("pipe2");
	int wfd = fds[1];
	if (fcntl(wfd, F_SETPIPE_SZ, pipe_size) < 0)
		die("F_SETPIPE_SZ");
	pipe_size = fcntl(wfd, F_GETPIPE_SZ);
	// Fresh pages: a ring of chunks over two runs, each given fresh pages
	// whole, so that huge pages stay whole, when the writer comes back to it.
	size_t huge = 2 << 20, run = chunk > huge ? chunk : huge;
	int whole = chunk <= huge ? huge % chunk == 0 : chunk % huge == 0;
	if (fresh && (!whole || (size_t)pipe_size > run)) {
		fprintf(stderr, "epollref: -F needs a chunk that divides 2 MiB (or a multiple of 2 MiB) and a pipe of at most a run\n");
		return 2;
	}
	size_t nchunks = fresh ? 2 * run / chunk : 2;
	pthread_t ht;
	if (use_epoll) {
		if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
			die("epoll_create1");
		for (int i = 0; i < 2; i++) {
			struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
			ev.data.fd = fds[i];
			if (epoll_ctl(epfd, EPOLL_CTL_ADD, fds[i], &ev) != 0)
				die("epoll_ctl");
		}
		if (pthread_create(&ht, NULL, harvester, &epfd) != 0)
			die("pthread_create");
	}
	// The chunks in one 2 MiB-aligned mapping.
	size_t span = nchunks * chunk;
	size_t len = (span + huge - 1) / huge * huge;
	char *raw = mmap(NULL, len + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		die("mmap");
	char *mem = (char *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
	if (madvise(mem, len, huge_pages ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) != 0)
		die(huge_pages ? "madvise(MADV_HUGEPAGE)" : "madvise(MADV_NOHUGEPAGE)");
	memset(mem, 1, span);
	pthread_t rt;
	struct reader_args ra = {.fd = fds[0], .pipe_size = pipe_size, .flags = sleeps ? 0 : SPLICE_F_NONBLOCK};
	if (pthread_create(&rt, NULL, reader, &ra) != 0)
		die("pthread_create");
	unsigned flags = sleeps ? 0 : SPLICE_F_NONBLOCK;
	unsigned long long sent = 0;
	double start = now(), end = start + secs;
	for (size_t k = 0; now() < end; k++) {
		size_t ix = k % nchunks;
		char *c = mem + ix * chunk;
		if (fresh && ix * chunk % run == 0 && madvise(c, run, MADV_DONTNEED) != 0)
			die("madvise(MADV_DONTNEED)");
		for (size_t i = 0; i < chunk; i += 4096)
			c[i] = (char)k;
		struct iovec iov = {c, chunk};
		while (iov.iov_len > 0) {
			ssize_t n = vmsplice(wfd, &iov, 1, flags);
			if (n > 0) {
				iov.iov_base = (char *)iov.iov_base + n;
				iov.iov_len -= (size_t)n;
				sent += (unsigned long long)n;
			} else if (n == 0) { // never for a non-empty iovec; do not loop on it
				fprintf(stderr, "epollref: vmsplice mapped nothing\n");
				return 1;
			} else if (errno != EAGAIN && errno != EINTR) {
				die("vmsplice");
			}
		}
	}
	close(wfd);
	pthread_join(rt, NULL);
	double took = now() - start;
	atomic_store(&stop, 1);
	if (use_epoll)
		pthread_join(ht, NULL);
	if (ra.got != sent) {
		fprintf(stderr, "reader got %llu bytes of %llu\n", ra.got, sent);
		return 1;
	}
	printf("epollref,%zu,%d,%d,%s,%s,%d,%llu,%.4f,%.3f\n", chunk, pipe_size, use_epoll, fresh ? "F" : "W",
	       huge_pages ? "thp" : "none", !sleeps, ra.got, took, ra.got / took / 1e9);
	return 0;
usage:
	fprintf(stderr, "usage: %s [-b chunk] [-p pipe] [-t secs] [-F] [-H none|thp] [-s] [-E]\n", argv[0]);
	return 2;
}
