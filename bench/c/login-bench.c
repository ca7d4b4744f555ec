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
 * The first SERVICE is the baseline. For each batch, each service's median
 * is taken; the added cost is a service's median minus the baseline's in
 * the same batch, and the ratio is against the service whose name ends in
 * `faillock`. Prints one table row, a cell per service in their order:
 * medians over the batches of each figure with their spread (min..max).
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

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* One login in a fresh pamtester process; its peak RSS (KiB) goes to *rss. */
static int login_process(const char *service, const char *user,
                         const char *password, long *rss) {
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
    double *medians = malloc(sizeof(double) * (size_t)(count * batches));
    long *peak = calloc((size_t)count, sizeof(long));
    long *faults = calloc((size_t)count, sizeof(long));
    double *times[MAX_SERVICES];
    for (int s = 0; s < count; s++)
        times[s] = malloc(sizeof(double) * (size_t)logins);
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
                double started = now_us();
                int rc = forked ? login_process(services[s], who, password, &rss)
                                : login(services[s], who, password);
                double took = now_us() - started;
                getrusage(RUSAGE_SELF, &after);
                faults[s] += after.ru_minflt - before.ru_minflt;
                if (rss > peak[s])
                    peak[s] = rss;
                if ((path == PATH_OK) != (rc == 0)) {
                    fprintf(stderr, "login-bench: %s: %s login of %s ended with %d\n",
                            services[s], path == PATH_OK ? "a right" : "a wrong", who, rc);
                    exit(1);
                }
                times[s][i] = took;
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
        for (int s = 0; s < count; s++) {
            memcpy(samples, times[s], sizeof(double) * (size_t)logins);
            medians[s * batches + b] = median(samples, (int)logins);
        }
    }
    /* Per batch: median, added over baseline, ratio against faillock. */
    printf("| %s | %s |", forked ? "fresh process" : "one process", argv[4]);
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
        double a_lo, a_hi, r_lo, r_hi;
        double a = median(added, (int)batches);
        a_lo = added[0];
        a_hi = added[batches - 1];
        double r = median(ratio, (int)batches);
        r_lo = ratio[0];
        r_hi = ratio[batches - 1];
        if (s == 0)
            printf(" %.0f", m);
        else if (faillock > 0 && s != faillock)
            printf(" +%.0f (%.0f..%.0f) ×%.2f (%.2f..%.2f)", a, a_lo, a_hi, r, r_lo, r_hi);
        else
            printf(" +%.0f (%.0f..%.0f)", a, a_lo, a_hi);
        /* Page faults per login (of this process: in fork mode only the
         * harness's own, so left out), and pamtester's peak RSS. */
        double per_login = (double)faults[s] / (double)(batches * logins);
        double base_faults = (double)faults[0] / (double)(batches * logins);
        if (!forked && s == 0)
            printf(", %.0f faults", per_login);
        else if (!forked)
            printf(", %+.0f faults", per_login - base_faults);
        else if (s == 0)
            printf(", %ld KiB", peak[0]);
        else
            printf(", %+ld KiB", peak[s] - peak[0]);
        printf(" |");
    }
    printf("\n");
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
