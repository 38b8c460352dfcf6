/* Counts the calls to malloc, calloc and realloc of the process it is preloaded into,
 * and prints the count to stderr at exit: "allocations=N". make bench runs the point
 * query loops with it, C's and LibPQ's, twice each with different lengths, so that
 * connecting and warming up cancel out and what is left is the allocations per query.
 * Unlike time on a shared machine, this count is the same on every run.
 *
 *   cc -O2 -shared -fPIC -o malloc_count.so malloc_count.c
 *   LD_PRELOAD=./malloc_count.so COMMAND...
 *
 * It forwards to glibc's own entry points (__libc_malloc and friends), so no dlsym is
 * needed, which itself allocates.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);

static atomic_long allocations;

void *malloc(size_t size) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return __libc_realloc(pointer, size);
}

__attribute__((destructor)) static void report(void) {
    char line[64];
    int length = snprintf(line, sizeof line, "allocations=%ld\n", (long)atomic_load(&allocations));
    if (length > 0) (void)!write(2, line, (size_t)length);
}
