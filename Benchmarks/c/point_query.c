/* The point query LibPQ's benchmark runs, in plain C on libpq: the floor LibPQ's
 * overhead is measured against. One thread per connection.
 *
 *   cc -O2 -o point_query point_query.c -I/usr/include/postgresql -lpq -lpthread
 *   ./point_query 'postgres://…' QUERIES ROWS CONNECTIONS
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *conninfo;
static long queries_per_thread;
static long rows;

static void *loop(void *arg) {
    unsigned int seed = (unsigned int)(size_t)arg;
    PGconn *connection = PQconnectdb(conninfo);
    if (PQstatus(connection) != CONNECTION_OK) { fprintf(stderr, "%s", PQerrorMessage(connection)); exit(1); }
    PGresult *prepared = PQprepare(connection, "q", "SELECT abalance FROM pgbench_accounts WHERE aid = $1", 1, NULL);
    if (PQresultStatus(prepared) != PGRES_COMMAND_OK) { fprintf(stderr, "%s", PQerrorMessage(connection)); exit(1); }
    PQclear(prepared);
    char value[16];
    const char *values[1] = { value };
    for (long i = 0; i < queries_per_thread; i++) {
        snprintf(value, sizeof value, "%ld", 1 + (long)(rand_r(&seed) % rows));
        PGresult *result = PQexecPrepared(connection, "q", 1, values, NULL, NULL, 1);
        if (PQresultStatus(result) != PGRES_TUPLES_OK || PQntuples(result) != 1) { fprintf(stderr, "%s", PQerrorMessage(connection)); exit(1); }
        PQclear(result);
    }
    PQfinish(connection);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: point_query URL QUERIES ROWS CONNECTIONS\n"); return 64; }
    conninfo = argv[1];
    long queries = atol(argv[2]);
    rows = atol(argv[3]);
    int threads = atoi(argv[4]);
    queries_per_thread = queries / threads;
    pthread_t ids[256];
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int t = 0; t < threads; t++) pthread_create(&ids[t], NULL, loop, (void *)(size_t)(t + 1));
    for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);
    clock_gettime(CLOCK_MONOTONIC, &end);
    double seconds = (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
    long total = queries_per_thread * threads;
    printf("C-libpq connections=%d queries=%ld us_per_query=%.2f per_second=%ld\n", threads, total, seconds * 1e6 / total * threads, (long)(total / seconds));
    return 0;
}
