// CPU per UDP datagram sent to loopback, one sendmsg per datagram or
// sendmmsg in batches: does batching sends across destinations (what
// quinn-udp does not do) pay on this host? A forked child on another core
// drains ten receiving sockets; the sender cycles 1,000 destinations and
// pauses 2 ms every 2,000 datagrams so the receivers keep up. Bounded: it
// sends COUNT datagrams and stops, and loopback is all it touches.
//
//   gcc -O2 -o /tmp/udp-send-cost loadgen/scripts/udp-send-cost.c
//   for b in 1 32 1 32; do setsid taskset -c 0 /tmp/udp-send-cost $b 400000; done
//
// Prints "batch B: X us cpu per datagram" (the sender's user + system time,
// which on loopback includes the receiving side's softirq work, as the
// node's figures do).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define RECEIVERS 10
#define DESTINATIONS 1000
#define PAYLOAD 120
#define MAX_BATCH 64

static double cpu_seconds(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s BATCH COUNT\n", argv[0]);
        return 2;
    }
    int batch = atoi(argv[1]), count = atoi(argv[2]);
    if (batch < 1 || batch > MAX_BATCH || count < batch) {
        fprintf(stderr, "BATCH is 1-%d, COUNT at least BATCH\n", MAX_BATCH);
        return 2;
    }
    int rx[RECEIVERS];
    for (int i = 0; i < RECEIVERS; i++) {
        rx[i] = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(40000 + i)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int size = 64 << 20;
        setsockopt(rx[i], SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
        if (bind(rx[i], (struct sockaddr *)&a, sizeof a) != 0) {
            perror("bind");
            return 1;
        }
    }
    if (fork() == 0) {
        cpu_set_t cores;
        CPU_ZERO(&cores);
        CPU_SET(1, &cores);
        sched_setaffinity(0, sizeof cores, &cores);
        char buf[2048];
        for (;;) {
            int any = 0;
            for (int i = 0; i < RECEIVERS; i++)
                if (recv(rx[i], buf, sizeof buf, MSG_DONTWAIT) > 0) any = 1;
            if (!any) usleep(100);
        }
    }
    int tx = socket(AF_INET, SOCK_DGRAM, 0);
    static struct sockaddr_in dst[DESTINATIONS];
    for (int i = 0; i < DESTINATIONS; i++) {
        dst[i].sin_family = AF_INET;
        dst[i].sin_port = htons(40000 + i % RECEIVERS);
        dst[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    static char payload[MAX_BATCH][PAYLOAD];
    memset(payload, 1, sizeof payload);
    struct mmsghdr msgs[MAX_BATCH];
    struct iovec iov[MAX_BATCH];
    double start = cpu_seconds();
    int sent = 0;
    while (sent < count) {
        for (int j = 0; j < batch; j++) {
            memset(&msgs[j], 0, sizeof msgs[j]);
            iov[j].iov_base = payload[j];
            iov[j].iov_len = PAYLOAD;
            msgs[j].msg_hdr.msg_iov = &iov[j];
            msgs[j].msg_hdr.msg_iovlen = 1;
            msgs[j].msg_hdr.msg_name = &dst[(sent + j) % DESTINATIONS];
            msgs[j].msg_hdr.msg_namelen = sizeof dst[0];
        }
        if (batch == 1)
            sendmsg(tx, &msgs[0].msg_hdr, 0);
        else
            sendmmsg(tx, msgs, batch, 0);
        sent += batch;
        if (sent % 2000 < batch) usleep(2000);
    }
    printf("batch %d: %.3f us cpu per datagram\n", batch, (cpu_seconds() - start) / sent * 1e6);
    fflush(stdout);
    kill(0, SIGKILL); // the drainer and this process group; run it under setsid
    return 0;
}
