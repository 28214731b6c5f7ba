/*
 * runner.c -- starts one consumer (a program, or a pipeline of two) of an lb ring, holds it
 * stopped once it has attached, and times it from its release to its exit (bench/pcap/run.sh).
 *
 *     pcap_runner STATUS OUT ERR -- PROGRAM ARGS... [ '|' PROGRAM2 ARGS... ]
 *
 * The consumer runs in a process group of its own, stdin from /dev/null (PROGRAM2: the pipe
 * from PROGRAM), stdout to OUT (PROGRAM2's when there is a pipe), stderr of both to ERR.
 * Lines appended to STATUS:
 *     pids P1 [P2]      at start
 *     stopped           after SIGUSR1: the group was sent SIGSTOP and every process has stopped
 *     {JSON}            after SIGUSR2: the group was sent SIGCONT; once every process has exited:
 *                       wall_s (SIGCONT to the last exit), cpu_s (user + system of the whole
 *                       processes, start-up included, from wait4), user_s, sys_s, cpu_before_s
 *                       (on CPU before the stop: start-up and attaching, from
 *                       /proc/PID/task/TID/schedstat), start_to_stop_s, and each exit status.
 * The runner exits 0 when every process exited 0, 1 otherwise.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double mono(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static FILE *status;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(status, fmt, ap);
    va_end(ap);
    fflush(status);
}

/* Seconds on CPU of every thread of a process so far (sum_exec_runtime). */
static double cpu_of(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d) return 0;
    double sum = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char f[320];
        snprintf(f, sizeof f, "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
        FILE *s = fopen(f, "r");
        if (!s) continue;
        unsigned long long ns;
        if (fscanf(s, "%llu", &ns) == 1) sum += (double)ns / 1e9;
        fclose(s);
    }
    closedir(d);
    return sum;
}

static pid_t spawn(char **argv, pid_t group, int in, int out, int err, const sigset_t *mask) {
    pid_t pid = fork();
    if (pid < 0) { perror("runner: fork"); exit(1); }
    if (pid == 0) {
        setpgid(0, group);
        sigprocmask(SIG_UNBLOCK, mask, NULL);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        closefrom(3);
        execvp(argv[0], argv);
        fprintf(stderr, "runner: %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, group ? group : pid);
    return pid;
}

int main(int argc, char **argv) {
    if (argc < 6 || strcmp(argv[4], "--") != 0) {
        fprintf(stderr, "usage: %s STATUS OUT ERR -- PROGRAM ARGS... ['|' PROGRAM2 ARGS...]\n", argv[0]);
        return 2;
    }
    status = fopen(argv[1], "a");
    int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int null = open("/dev/null", O_RDONLY);
    if (!status || out < 0 || err < 0 || null < 0) { perror("runner"); return 2; }
    char **first = argv + 5, **second = NULL;
    for (char **a = first; *a; a++) {
        if (strcmp(*a, "|") == 0) {
            *a = NULL;
            second = a + 1;
            break;
        }
    }
    if (second && !*second) { fprintf(stderr, "runner: nothing after '|'\n"); return 2; }

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    sigprocmask(SIG_BLOCK, &mask, NULL);

    double started = mono();
    pid_t pids[2];
    int n = 0;
    if (second) {
        int fd[2];
        if (pipe(fd) != 0) { perror("runner: pipe"); return 2; }
        pids[n++] = spawn(first, 0, null, fd[1], err, &mask);
        pids[n++] = spawn(second, pids[0], fd[0], out, err, &mask);
        close(fd[0]);
        close(fd[1]);
    } else {
        pids[n++] = spawn(first, 0, null, out, err, &mask);
    }
    pid_t group = pids[0];
    if (n == 2) say("pids %d %d\n", (int)pids[0], (int)pids[1]);
    else say("pids %d\n", (int)pids[0]);

    int exited[2] = { 0, 0 }, codes[2] = { -1, -1 };
    double cpu_before = 0, stopped_at = 0;
    for (;;) {
        int sig;
        if (sigwait(&mask, &sig) != 0) continue;
        if (sig == SIGUSR1) {
            kill(-group, SIGSTOP);
            for (int i = 0; i < n; i++) {
                int st;
                if (waitpid(pids[i], &st, WUNTRACED) < 0) { perror("runner: waitpid"); return 2; }
                if (!WIFSTOPPED(st)) {   /* it ended before it could be stopped */
                    exited[i] = 1;
                    codes[i] = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                    say("exited %d status %d\n", (int)pids[i], codes[i]);
                }
            }
            stopped_at = mono();
            for (int i = 0; i < n; i++) if (!exited[i]) cpu_before += cpu_of(pids[i]);
            say("stopped\n");
        } else if (sig == SIGUSR2) {
            double t0 = mono();
            kill(-group, SIGCONT);
            struct rusage total;
            memset(&total, 0, sizeof total);
            for (int i = 0; i < n; i++) {
                if (exited[i]) continue;
                int st;
                struct rusage ru;
                while (wait4(pids[i], &st, 0, &ru) < 0) {
                    if (errno != EINTR) { perror("runner: wait4"); return 2; }
                }
                codes[i] = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                timeradd(&total.ru_utime, &ru.ru_utime, &total.ru_utime);
                timeradd(&total.ru_stime, &ru.ru_stime, &total.ru_stime);
            }
            double t1 = mono();
            double user = (double)total.ru_utime.tv_sec + (double)total.ru_utime.tv_usec / 1e6;
            double sys = (double)total.ru_stime.tv_sec + (double)total.ru_stime.tv_usec / 1e6;
            char codes_s[32];
            if (n == 2) snprintf(codes_s, sizeof codes_s, "%d,%d", codes[0], codes[1]);
            else snprintf(codes_s, sizeof codes_s, "%d", codes[0]);
            say("{\"wall_s\":%.6f,\"cpu_s\":%.6f,\"user_s\":%.6f,\"sys_s\":%.6f,\"cpu_before_s\":%.6f,"
                "\"start_to_stop_s\":%.6f,\"exit\":[%s]}\n",
                t1 - t0, user + sys, user, sys, cpu_before, stopped_at - started, codes_s);
            int ok = 1;
            for (int i = 0; i < n; i++) ok &= codes[i] == 0;
            return ok ? 0 : 1;
        }
    }
}
