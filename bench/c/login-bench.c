/*
 * login-bench: what a PAM module adds to a login, measured from a C host
 * (as sshd, login and pamtester are: no Rust runtime, no libgcc_s already
 * loaded), against a baseline stack in the same run, rounds interleaved.
 *
 *   login-bench inproc BATCHES LOGINS PATH USER PASSWORD SERVICE...
 *   login-bench fork   BATCHES LOGINS PATH USER PASSWORD SERVICE...
 *   login-bench storm  PROCS ATTEMPTS SERVICE USERS PASSWORD
 *
 * inproc: one process, a fresh pam_start .. pam_end per login, each login
 *   pam_authenticate then pam_acct_mgmt.
 * fork: one login per fresh process: `pamtester SERVICE USER authenticate
 *   acct_mgmt` with the password on its standard input; its peak RSS comes
 *   from wait4.
 * PATH is `ok` (the right password: every login must succeed), `fail` (a
 *   wrong one: every login must fail; after each, an unmeasured right login
 *   resets the count, so no failure locks) or `lock` (USER is a prefix:
 *   login i uses USER<i>, whose state already holds deny - 1 failures, and
 *   must fail; each such failure locks).
 * Each login is timed twice: wall-clock, and CPU time (this process's in one
 * process; pamtester's own, from wait4, in a fresh process), which a busy
 * machine disturbs less. The first SERVICE is the baseline. For each batch,
 * each service's median is taken; the added cost is a service's median
 * minus the baseline's in the same batch, and the ratio is against the
 * service whose name ends in `faillock`. Prints a table row per clock (see
 * print_row).
 *
 * storm: PROCS processes at once, each making ATTEMPTS logins with
 *   PASSWORD; process p, attempt a uses user `USERS` if it has no `%`, else
 *   USERS's prefix followed by (p * ATTEMPTS + a) % N, N following the `%`:
 *   `u%1000` spreads the storm over u0..u999. Prints one JSON object: how
 *   many logins each result code ended with, the throughput, and per user
 *   [logins, logins told of a lock before the password was asked for].
 *
 * Every wait for a child is wait4; nothing here sleeps.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SERVICES 8
/* Linux-PAM's codes run from 0 to 31 (_PAM_RETURN_VALUES is 32); one slot
 * more counts anything else. */
#define CODES 33

/* What the conversation saw of one login. */
struct exchange {
    const char *password;
    int prompted;
    /* A message about a lock came before any prompt: the stack refused the
     * account before the password was asked for (deadbolt's preauth). */
    int refused_before_prompt;
};

static int answer(int num_msg, const struct pam_message **msg,
                  struct pam_response **resp, void *appdata) {
    struct exchange *ex = appdata;
    if (num_msg <= 0 || num_msg > PAM_MAX_NUM_MSG)
        return PAM_CONV_ERR;
    struct pam_response *replies = calloc((size_t)num_msg, sizeof *replies);
    if (replies == NULL)
        return PAM_BUF_ERR;
    for (int i = 0; i < num_msg; i++) {
        int style = msg[i]->msg_style;
        if (style == PAM_PROMPT_ECHO_OFF || style == PAM_PROMPT_ECHO_ON) {
            ex->prompted = 1;
            replies[i].resp = strdup(ex->password);
            if (replies[i].resp == NULL) {
                for (int j = 0; j < i; j++)
                    free(replies[j].resp);
                free(replies);
                return PAM_BUF_ERR;
            }
        } else if (!ex->prompted && msg[i]->msg != NULL && strstr(msg[i]->msg, "locked")) {
            ex->refused_before_prompt = 1;
        }
    }
    *resp = replies;
    return PAM_SUCCESS;
}

/* libpam calls this instead of sleeping out a module's fail delay: the
 * delay is policy, not cost. */
static void no_delay(int status, unsigned int usec, void *appdata) {
    (void)status;
    (void)usec;
    (void)appdata;
}

/* One login; returns libpam's code for the step that ended it. */
static int login_seen(const char *service, const char *user, struct exchange *ex) {
    struct pam_conv conv = {answer, ex};
    pam_handle_t *pamh = NULL;
    int rc = pam_start(service, user, &conv, &pamh);
    if (rc != PAM_SUCCESS)
        return rc;
    rc = pam_set_item(pamh, PAM_FAIL_DELAY, (const void *)no_delay);
    if (rc == PAM_SUCCESS)
        rc = pam_authenticate(pamh, 0);
    if (rc == PAM_SUCCESS)
        rc = pam_acct_mgmt(pamh, 0);
    pam_end(pamh, rc);
    return rc;
}

static int login(const char *service, const char *user, const char *password) {
    struct exchange ex = {password, 0, 0};
    return login_seen(service, user, &ex);
}

static double clock_us(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double now_us(void) {
    return clock_us(CLOCK_MONOTONIC);
}

/* One login in a fresh pamtester process; its peak RSS (KiB) goes to *rss,
 * the CPU time it used to *cpu_us. */
static int login_process(const char *service, const char *user,
                         const char *password, long *rss, double *cpu_us) {
    int in[2];
    if (pipe(in) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(in[0], 0);
        close(in[0]);
        close(in[1]);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execlp("pamtester", "pamtester", service, user, "authenticate",
               "acct_mgmt", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    size_t len = strlen(password);
    ssize_t put = write(in[1], password, len);
    ssize_t nl = write(in[1], "\n", 1);
    close(in[1]);
    int status;
    struct rusage usage;
    while (wait4(pid, &status, 0, &usage) < 0)
        if (errno != EINTR)
            return -1;
    *rss = usage.ru_maxrss;
    *cpu_us = (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e6 +
              (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
    if (put != (ssize_t)len || nl != 1 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what) {
    fprintf(stderr, "login-bench: %s\n", what);
    exit(1);
}

static long positive(const char *text, const char *what) {
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || n <= 0 || n > 100000000) {
        fprintf(stderr, "login-bench: %s must be a positive integer, not \"%s\"\n", what, text);
        exit(2);
    }
    return n;
}

enum path { PATH_OK, PATH_FAIL, PATH_LOCK };

/* One table row for one clock: per service, the median over the batches of
 * its batch medians (the baseline) or of what it adds over the baseline in
 * the same batch, with the spread over the batches, and the ratio to
 * faillock's; then the page faults a login adds (one process: of this
 * process) or pamtester's peak RSS (fresh process). */
static void print_row(int forked, const char *path, const char *clock, const double *medians,
                      int count, long batches, int faillock, const long *faults, long logins,
                      const long *peak) {
    printf("| %s | %s | %s |", forked ? "fresh process" : "one process", path, clock);
    double per_login0 = (double)faults[0] / (double)(batches * logins);
    for (int s = 0; s < count; s++) {
        double med[batches], added[batches], ratio[batches];
        for (long b = 0; b < batches; b++) {
            med[b] = medians[s * batches + b];
            added[b] = med[b] - medians[b];
            ratio[b] = faillock > 0 ? added[b] / (medians[faillock * batches + b] - medians[b])
                                    : 0;
        }
        /* median() sorts in place: afterwards [0] is the least, [n-1] the most. */
        double m = median(med, (int)batches);
        double a = median(added, (int)batches);
        double r = median(ratio, (int)batches);
        if (s == 0)
            printf(" %.0f", m);
        else if (faillock > 0 && s != faillock)
            printf(" +%.0f (%.0f..%.0f) ×%.2f (%.2f..%.2f)", a, added[0], added[batches - 1], r,
                   ratio[0], ratio[batches - 1]);
        else
            printf(" +%.0f (%.0f..%.0f)", a, added[0], added[batches - 1]);
        double per_login = (double)faults[s] / (double)(batches * logins);
        if (!forked && s == 0)
            printf(", %.0f faults", per_login);
        else if (!forked)
            printf(", %+.0f faults", per_login - per_login0);
        else if (s == 0)
            printf(", %ld KiB", peak[0]);
        else
            printf(", %+ld KiB", peak[s] - peak[0]);
        printf(" |");
    }
    printf("\n");
}

static int measure(int argc, char **argv) {
    int forked = strcmp(argv[1], "fork") == 0;
    long batches = positive(argv[2], "BATCHES");
    long logins = positive(argv[3], "LOGINS");
    enum path path;
    if (strcmp(argv[4], "ok") == 0)
        path = PATH_OK;
    else if (strcmp(argv[4], "fail") == 0)
        path = PATH_FAIL;
    else if (strcmp(argv[4], "lock") == 0)
        path = PATH_LOCK;
    else
        die("PATH must be ok, fail or lock");
    const char *user = argv[5], *password = argv[6];
    char **services = argv + 7;
    int count = argc - 7;
    if (count < 1 || count > MAX_SERVICES)
        die("give from one to eight services, the baseline first");
    int faillock = -1;
    for (int s = 0; s < count; s++) {
        size_t len = strlen(services[s]);
        if (len >= 8 && strcmp(services[s] + len - 8, "faillock") == 0)
            faillock = s;
    }

    double *samples = malloc(sizeof(double) * (size_t)logins);
    /* Per clock (0: wall, 1: CPU), per service, per batch. */
    double *medians = malloc(sizeof(double) * (size_t)(2 * count * batches));
    long *peak = calloc((size_t)count, sizeof(long));
    long *faults = calloc((size_t)count, sizeof(long));
    double *times[2][MAX_SERVICES];
    for (int c = 0; c < 2; c++)
        for (int s = 0; s < count; s++)
            if ((times[c][s] = malloc(sizeof(double) * (size_t)logins)) == NULL)
                die("out of memory");
    if (samples == NULL || medians == NULL || peak == NULL || faults == NULL)
        die("out of memory");
    /* One unmeasured login per service loads the libraries and NSS files
     * into the page cache; with the right password, so it leaves no
     * failure behind. */
    const char *warm = getenv("LOGIN_BENCH_RIGHT");
    for (int s = 0; s < count; s++)
        login(services[s], user, warm ? warm : password);
    char name[256];
    long next_locked = 0;
    for (long b = 0; b < batches; b++) {
        for (long i = 0; i < logins; i++) {
            for (int s = 0; s < count; s++) {
                const char *who = user;
                if (path == PATH_LOCK) {
                    snprintf(name, sizeof name, "%s%ld", user, next_locked);
                    who = name;
                }
                long rss = 0;
                struct rusage before, after;
                getrusage(RUSAGE_SELF, &before);
                double cpu = 0;
                double cpu_started = clock_us(CLOCK_PROCESS_CPUTIME_ID);
                double started = now_us();
                int rc = forked ? login_process(services[s], who, password, &rss, &cpu)
                                : login(services[s], who, password);
                double took = now_us() - started;
                if (!forked)
                    cpu = clock_us(CLOCK_PROCESS_CPUTIME_ID) - cpu_started;
                getrusage(RUSAGE_SELF, &after);
                faults[s] += after.ru_minflt - before.ru_minflt;
                if (rss > peak[s])
                    peak[s] = rss;
                if ((path == PATH_OK) != (rc == 0)) {
                    fprintf(stderr, "login-bench: %s: %s login of %s ended with %d\n",
                            services[s], path == PATH_OK ? "a right" : "a wrong", who, rc);
                    exit(1);
                }
                times[0][s][i] = took;
                times[1][s][i] = cpu;
                /* The failure path measures failures that do not lock: a
                 * right password (unmeasured) resets the count. */
                if (path == PATH_FAIL) {
                    const char *right = getenv("LOGIN_BENCH_RIGHT");
                    if (right == NULL || login(services[s], who, right) != 0)
                        die("the reset login (LOGIN_BENCH_RIGHT) failed");
                }
            }
            next_locked++;
        }
        for (int c = 0; c < 2; c++)
            for (int s = 0; s < count; s++) {
                memcpy(samples, times[c][s], sizeof(double) * (size_t)logins);
                medians[(c * count + s) * batches + b] = median(samples, (int)logins);
            }
    }
    for (int c = 0; c < 2; c++)
        print_row(forked, argv[4], c ? "CPU" : "wall", medians + c * count * batches, count,
                  batches, faillock, faults, logins, peak);
    return 0;
}

/* Reads exactly len bytes, or fails. */
static int read_all(int fd, void *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

static int write_all(int fd, const void *buf, size_t len) {
    size_t put = 0;
    while (put < len) {
        ssize_t n = write(fd, (const char *)buf + put, len - put);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        put += (size_t)n;
    }
    return 0;
}

static int storm(int argc, char **argv) {
    if (argc != 7)
        die("usage: login-bench storm PROCS ATTEMPTS SERVICE USERS PASSWORD");
    long procs = positive(argv[2], "PROCS");
    long attempts = positive(argv[3], "ATTEMPTS");
    const char *service = argv[4], *users = argv[5], *password = argv[6];
    const char *spread = strchr(users, '%');
    long distinct = spread ? positive(spread + 1, "the number after %") : 1;
    int prefix = spread ? (int)(spread - users) : (int)strlen(users);
    /* Per process: counts per result code, then per user the logins made
     * and those told of a lock before any prompt. */
    size_t slots = CODES + 2 * (size_t)distinct;
    long *total = calloc(slots, sizeof(long));
    long *mine = calloc(slots, sizeof(long));
    int(*fds)[2] = calloc((size_t)procs, sizeof *fds);
    pid_t *pids = calloc((size_t)procs, sizeof *pids);
    if (total == NULL || mine == NULL || fds == NULL || pids == NULL)
        die("out of memory");
    double started = now_us();
    for (long p = 0; p < procs; p++) {
        if (pipe(fds[p]) != 0)
            die("pipe failed");
        pids[p] = fork();
        if (pids[p] < 0)
            die("fork failed");
        if (pids[p] == 0) {
            close(fds[p][0]);
            char name[256];
            for (long a = 0; a < attempts; a++) {
                long who = (p * attempts + a) % distinct;
                snprintf(name, sizeof name, spread ? "%.*s%ld" : "%.*s", prefix, users, who);
                struct exchange ex = {password, 0, 0};
                int rc = login_seen(service, name, &ex);
                mine[rc >= 0 && rc < CODES - 1 ? rc : CODES - 1]++;
                mine[CODES + 2 * who]++;
                if (ex.refused_before_prompt)
                    mine[CODES + 2 * who + 1]++;
            }
            _exit(write_all(fds[p][1], mine, slots * sizeof(long)) == 0 ? 0 : 1);
        }
        close(fds[p][1]);
    }
    int broken = 0;
    for (long p = 0; p < procs; p++) {
        int ok = read_all(fds[p][0], mine, slots * sizeof(long)) == 0;
        close(fds[p][0]);
        int status;
        while (waitpid(pids[p], &status, 0) < 0 && errno == EINTR)
            ;
        if (!ok || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            broken++;
            continue;
        }
        for (size_t c = 0; c < slots; c++)
            total[c] += mine[c];
    }
    double seconds = (now_us() - started) / 1e6;
    printf("{\"service\":\"%s\",\"procs\":%ld,\"logins\":%ld,\"users\":%ld,"
           "\"seconds\":%.3f,\"logins_per_s\":%.0f,\"broken_procs\":%d,\"codes\":{",
           service, procs, procs * attempts, distinct, seconds,
           (double)(procs * attempts) / seconds, broken);
    int first = 1;
    for (int c = 0; c < CODES; c++)
        if (total[c]) {
            printf("%s\"%d\":%ld", first ? "" : ",", c, total[c]);
            first = 0;
        }
    printf("},\"per_user\":{");
    for (long u = 0; u < distinct; u++) {
        printf("%s\"%.*s", u ? "," : "", prefix, users);
        if (spread)
            printf("%ld", u);
        printf("\":[%ld,%ld]", total[CODES + 2 * u], total[CODES + 2 * u + 1]);
    }
    printf("}}\n");
    return broken ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "storm") == 0)
        return storm(argc, argv);
    if (argc >= 8 && (strcmp(argv[1], "inproc") == 0 || strcmp(argv[1], "fork") == 0))
        return measure(argc, argv);
    fprintf(stderr, "usage: login-bench inproc|fork BATCHES LOGINS ok|fail|lock USER PASSWORD "
                    "SERVICE...\n       login-bench storm PROCS ATTEMPTS SERVICE USERS "
                    "PASSWORD\n");
    return 2;
}
