/* writelog: an LD_PRELOAD shim that records every call by which a process changes files under one
 * directory, in the order the calls completed, so that a test can rebuild what a disk would hold
 * after a power loss at any point (tests/learners/cache/powerloss/replay.py reads the log).
 *
 * Environment:
 *   WRITELOG_ROOT    the directory to watch (canonical path: no symlinks, no trailing slash)
 *   WRITELOG_OUT     the log file (outside the root)
 *   WRITELOG_NOSYNC  fault injection, to prove the checker can fail: "all" drops every sync under
 *                    the root (fsync, fdatasync, msync, sync, syncfs succeed without syncing, and
 *                    O_SYNC / O_DSYNC are taken off opens); "data" drops fsync/fdatasync of files
 *                    named data.mdb (LMDB's data file; its O_DSYNC meta writes stay); "meta" takes
 *                    O_SYNC / O_DSYNC off opens of data.mdb (LMDB's meta page is then written
 *                    unsynced, as with MDB_NOMETASYNC); "dirs" drops fsync of directories. A
 *                    dropped call is not logged: to the log it never ran.
 *
 * What is logged (one record per completed call, see struct rec): opens (path, flags, whether the
 * file existed before, inode, directory or not), closes, dups, writes of any kind with their file
 * offset and bytes (and whether the descriptor was opened O_SYNC / O_DSYNC, whose writes are
 * durable when the call returns), truncations, fsync / fdatasync as a begin record before the
 * call and an end record after it (a sync covers the writes that completed before it began),
 * msync, sync_file_range (which makes nothing durable), mkdir, rename, unlink, rmdir, and shared
 * writable mappings (whose writes this shim cannot see: the replayer refuses a log with one on a
 * file whose contents matter). Calls that fail are not logged, except that a sync's begin record
 * is followed by an end record only on success.
 *
 * Only calls made through the dynamic linker are seen; the replayer checks its own model of the
 * directory tree against the inode numbers logged at each open, so a missed call shows up as a
 * mismatch rather than as a silently wrong disk image.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum {
    EV_OPEN = 1,
    EV_CLOSE = 2,
    EV_WRITE = 3,
    EV_TRUNC = 4,
    EV_SYNC_BEGIN = 5,
    EV_SYNC_END = 6,
    EV_MKDIR = 7,
    EV_RENAME = 8,
    EV_UNLINK = 9,
    EV_RMDIR = 10,
    EV_MMAP_SHARED_WRITE = 11,
    EV_SYNC_ALL_BEGIN = 12,
    EV_SYNC_ALL_END = 13,
    EV_SYNC_RANGE = 14,
    EV_MSYNC = 15,
    EV_DUP = 16,
    EV_UNSUPPORTED = 17,
};

enum { SYNC_FSYNC = 1, SYNC_FDATASYNC = 2 };

/* One log record, then path1, path2 and data of the lengths it gives. */
struct rec {
    uint32_t type;
    int32_t fd;
    uint32_t flags; /* open: flags as passed; write: 1 if the descriptor syncs each write */
    uint32_t tid;
    int64_t a; /* write, trunc: offset / length; open: existed before; sync: its id; dup: new fd */
    int64_t b; /* open: 1 for a directory */
    uint64_t ino;
    uint32_t len1;
    uint32_t len2;
    uint64_t len_data;
};

#define MAX_FDS 65536

struct fdinfo {
    unsigned char tracked;
    unsigned char syncs_writes; /* opened O_SYNC or O_DSYNC */
    unsigned char is_dir;
    unsigned char is_lmdb_data;
};

static struct fdinfo fds[MAX_FDS];
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1;
static char root[PATH_MAX];
static size_t root_len;
static int nosync_all, nosync_data, nosync_meta, nosync_dirs;
static int64_t next_sync_id = 1;

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_creat)(const char *, mode_t);
static int (*real_creat64)(const char *, mode_t);
static int (*real_close)(int);
static int (*real_dup)(int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev64)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev2)(int, const struct iovec *, int, off_t, int);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off_t);
static int (*real_truncate)(const char *, off_t);
static int (*real_truncate64)(const char *, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_msync)(void *, size_t, int);
static int (*real_sync_file_range)(int, off_t, off_t, unsigned int);
static void (*real_sync)(void);
static int (*real_syncfs)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned int);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_rmdir)(const char *);
static int (*real_mkdir)(const char *, mode_t);
static int (*real_mkdirat)(int, const char *, mode_t);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static void *(*real_mmap64)(void *, size_t, int, int, int, off_t);
static int (*real_fallocate)(int, int, off_t, off_t);
static int (*real_posix_fallocate)(int, off_t, off_t);
static int (*real_posix_fallocate64)(int, off_t, off_t);
static int (*real_link)(const char *, const char *);
static int (*real_linkat)(int, const char *, int, const char *, int);
static ssize_t (*real_copy_file_range)(int, off_t *, int, off_t *, size_t, unsigned int);

#define RESOLVE(name) real_##name = dlsym(RTLD_NEXT, #name)

static void resolve_all(void) {
    RESOLVE(open); RESOLVE(open64); RESOLVE(openat); RESOLVE(openat64); RESOLVE(creat);
    RESOLVE(creat64); RESOLVE(close); RESOLVE(dup); RESOLVE(dup2); RESOLVE(dup3);
    RESOLVE(write); RESOLVE(pwrite); RESOLVE(pwrite64); RESOLVE(writev); RESOLVE(pwritev);
    RESOLVE(pwritev64); RESOLVE(pwritev2); RESOLVE(ftruncate); RESOLVE(ftruncate64);
    RESOLVE(truncate); RESOLVE(truncate64); RESOLVE(fsync); RESOLVE(fdatasync); RESOLVE(msync);
    RESOLVE(sync_file_range); RESOLVE(sync); RESOLVE(syncfs); RESOLVE(rename); RESOLVE(renameat);
    RESOLVE(renameat2); RESOLVE(unlink); RESOLVE(unlinkat); RESOLVE(rmdir); RESOLVE(mkdir);
    RESOLVE(mkdirat); RESOLVE(mmap); RESOLVE(mmap64); RESOLVE(fallocate);
    RESOLVE(posix_fallocate); RESOLVE(posix_fallocate64); RESOLVE(link); RESOLVE(linkat);
    RESOLVE(copy_file_range);
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_impl(void) {
    resolve_all();
    const char *r = getenv("WRITELOG_ROOT");
    const char *out = getenv("WRITELOG_OUT");
    const char *nosync = getenv("WRITELOG_NOSYNC");
    if (nosync != NULL) {
        nosync_all = strcmp(nosync, "all") == 0;
        nosync_data = strcmp(nosync, "data") == 0;
        nosync_meta = strcmp(nosync, "meta") == 0;
        nosync_dirs = strcmp(nosync, "dirs") == 0;
    }
    if (r == NULL || out == NULL || strlen(r) >= sizeof(root))
        return;
    strcpy(root, r);
    root_len = strlen(root);
    /* Through the real open: the log itself is never watched. */
    log_fd = real_open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

static void init(void) { pthread_once(&init_once, init_impl); }

__attribute__((constructor)) static void writelog_constructor(void) { init(); }

static void write_all(const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = real_write(log_fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            abort(); /* a log with a hole would give wrong disk images: better no run at all */
        }
        p += n;
        len -= (size_t)n;
    }
}

/* Append one record; the caller holds log_lock, so that the order of records is the order in
 * which the calls completed (each is logged before the call returns to its caller). */
static void emit_locked(uint32_t type, int fd, uint32_t flags, int64_t a, int64_t b, uint64_t ino,
                        const char *p1, const char *p2, const void *data, size_t len_data) {
    struct rec r;
    memset(&r, 0, sizeof r);
    r.type = type;
    r.fd = fd;
    r.flags = flags;
    r.tid = (uint32_t)syscall(SYS_gettid);
    r.a = a;
    r.b = b;
    r.ino = ino;
    r.len1 = p1 ? (uint32_t)strlen(p1) : 0;
    r.len2 = p2 ? (uint32_t)strlen(p2) : 0;
    r.len_data = len_data;
    write_all(&r, sizeof r);
    if (r.len1)
        write_all(p1, r.len1);
    if (r.len2)
        write_all(p2, r.len2);
    if (len_data)
        write_all(data, len_data);
}

static void emit(uint32_t type, int fd, uint32_t flags, int64_t a, int64_t b, uint64_t ino,
                 const char *p1, const char *p2, const void *data, size_t len_data) {
    int saved = errno;
    pthread_mutex_lock(&log_lock);
    emit_locked(type, fd, flags, a, b, ino, p1, p2, data, len_data);
    pthread_mutex_unlock(&log_lock);
    errno = saved;
}

static int active(void) {
    init();
    return log_fd >= 0;
}

/* The canonical absolute path of (dirfd, path): its directory resolved with realpath, its last
 * component kept as it is (it may not exist yet, or may be a name about to go). */
static int canon(int dirfd, const char *path, char *out) {
    char abs[PATH_MAX * 2];
    char dir[PATH_MAX * 2];
    char resolved[PATH_MAX];
    if (path == NULL)
        return -1;
    if (path[0] == '/') {
        snprintf(abs, sizeof abs, "%s", path);
    } else {
        char base[PATH_MAX];
        if (dirfd == AT_FDCWD) {
            if (getcwd(base, sizeof base) == NULL)
                return -1;
        } else {
            char link[64];
            snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
            ssize_t n = readlink(link, base, sizeof base - 1);
            if (n < 0)
                return -1;
            base[n] = '\0';
        }
        snprintf(abs, sizeof abs, "%s/%s", base, path);
    }
    size_t len = strlen(abs);
    while (len > 1 && abs[len - 1] == '/')
        abs[--len] = '\0';
    char *slash = strrchr(abs, '/');
    const char *last = slash + 1;
    if (strcmp(last, ".") == 0 || strcmp(last, "..") == 0 || slash == abs) {
        if (realpath(abs, resolved) == NULL)
            return -1;
        snprintf(out, PATH_MAX, "%s", resolved);
        return 0;
    }
    memcpy(dir, abs, (size_t)(slash - abs));
    dir[slash - abs] = '\0';
    if (realpath(dir, resolved) == NULL)
        return -1;
    if (snprintf(out, PATH_MAX, "%s/%s", resolved, last) >= PATH_MAX)
        return -1;
    return 0;
}

static int under_root(const char *p) {
    return root_len > 0 && strncmp(p, root, root_len) == 0 &&
           (p[root_len] == '/' || p[root_len] == '\0');
}

static int tracked(int fd) { return fd >= 0 && fd < MAX_FDS && fds[fd].tracked; }

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* ------------------------------------------------------------------ opening and closing */

static int after_open(int fd, const char *path, int flags, int existed) {
    if (fd < 0 || fd >= MAX_FDS)
        return fd;
    memset(&fds[fd], 0, sizeof fds[fd]);
    if (path == NULL)
        return fd;
    struct stat st;
    int saved = errno;
    if (fstat(fd, &st) != 0) {
        errno = saved;
        return fd;
    }
    fds[fd].tracked = 1;
    fds[fd].syncs_writes = (flags & (O_SYNC | O_DSYNC)) != 0;
    fds[fd].is_dir = S_ISDIR(st.st_mode);
    fds[fd].is_lmdb_data = ends_with(path, "/data.mdb");
    emit(EV_OPEN, fd, (uint32_t)flags, existed, fds[fd].is_dir, (uint64_t)st.st_ino, path, NULL,
         NULL, 0);
    errno = saved;
    return fd;
}

static int do_open(int (*fn)(int, const char *, int, ...), int (*plain)(const char *, int, ...),
                   int dirfd, const char *path, int flags, mode_t mode) {
    char p[PATH_MAX];
    int watch = active() && canon(dirfd, path, p) == 0 && under_root(p);
    int existed = 0;
    if (watch) {
        struct stat st;
        existed = stat(p, &st) == 0;
        if (nosync_all || (nosync_meta && ends_with(p, "/data.mdb")))
            flags &= ~(O_SYNC | O_DSYNC);
    }
    int fd = plain ? plain(path, flags, mode) : fn(dirfd, path, flags, mode);
    if (fd >= 0 && fd < MAX_FDS)
        fds[fd].tracked = 0;
    return watch ? after_open(fd, p, flags, existed) : fd;
}

static mode_t mode_arg(int flags, va_list ap) {
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    init();
    return do_open(NULL, real_open, AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    init();
    return do_open(NULL, real_open64, AT_FDCWD, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    init();
    return do_open(real_openat, NULL, dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    init();
    return do_open(real_openat64, NULL, dirfd, path, flags, mode);
}

int __open_2(const char *path, int flags) { return open(path, flags); }
int __open64_2(const char *path, int flags) { return open64(path, flags); }
int __openat_2(int dirfd, const char *path, int flags) { return openat(dirfd, path, flags); }
int __openat64_2(int dirfd, const char *path, int flags) { return openat64(dirfd, path, flags); }

int creat(const char *path, mode_t mode) { return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode); }
int creat64(const char *path, mode_t mode) {
    return open64(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

/* Logged under log_lock together with the close itself: a descriptor number another thread gets
 * from its next open is then always logged after this close, never before it. */
int close(int fd) {
    init();
    if (!tracked(fd))
        return real_close(fd);
    pthread_mutex_lock(&log_lock);
    fds[fd].tracked = 0;
    emit_locked(EV_CLOSE, fd, 0, 0, 0, 0, NULL, NULL, NULL, 0);
    int rc = real_close(fd);
    int saved = errno;
    pthread_mutex_unlock(&log_lock);
    errno = saved;
    return rc;
}

static int after_dup(int old, int fd) {
    if (fd >= 0 && fd < MAX_FDS) {
        if (tracked(old)) {
            fds[fd] = fds[old];
            emit(EV_DUP, old, 0, fd, 0, 0, NULL, NULL, NULL, 0);
        } else {
            if (fds[fd].tracked)
                emit(EV_CLOSE, fd, 0, 0, 0, 0, NULL, NULL, NULL, 0);
            fds[fd].tracked = 0;
        }
    }
    return fd;
}

int dup(int old) {
    init();
    return after_dup(old, real_dup(old));
}
int dup2(int old, int fd) {
    init();
    return after_dup(old, real_dup2(old, fd));
}
int dup3(int old, int fd, int flags) {
    init();
    return after_dup(old, real_dup3(old, fd, flags));
}

/* ------------------------------------------------------------------ writing */

static void *gather(const struct iovec *iov, int count, ssize_t n) {
    char *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf == NULL)
        abort();
    size_t at = 0;
    for (int i = 0; i < count && at < (size_t)n; i++) {
        size_t take = iov[i].iov_len;
        if (take > (size_t)n - at)
            take = (size_t)n - at;
        memcpy(buf + at, iov[i].iov_base, take);
        at += take;
    }
    return buf;
}

/* The offset a write() on fd starts at; O_APPEND is not modelled (the replayer rejects it). */
static off_t current_offset(int fd) { return lseek(fd, 0, SEEK_CUR); }

/* A write and its record are made under log_lock: the file position read before a write() is
 * then the one it writes at, and no record of another thread can slip between a write and its
 * record (which would reorder the log). */
ssize_t write(int fd, const void *buf, size_t count) {
    init();
    if (!tracked(fd))
        return real_write(fd, buf, count);
    pthread_mutex_lock(&log_lock);
    off_t at = current_offset(fd);
    ssize_t n = real_write(fd, buf, count);
    int saved = errno;
    if (n > 0)
        emit_locked(EV_WRITE, fd, fds[fd].syncs_writes, at, 0, 0, NULL, NULL, buf, (size_t)n);
    pthread_mutex_unlock(&log_lock);
    errno = saved;
    return n;
}

static ssize_t do_pwrite(ssize_t (*fn)(int, const void *, size_t, off_t), int fd, const void *buf,
                         size_t count, off_t offset) {
    init();
    if (!tracked(fd))
        return fn(fd, buf, count, offset);
    pthread_mutex_lock(&log_lock);
    ssize_t n = fn(fd, buf, count, offset);
    int saved = errno;
    if (n > 0)
        emit_locked(EV_WRITE, fd, fds[fd].syncs_writes, offset, 0, 0, NULL, NULL, buf, (size_t)n);
    pthread_mutex_unlock(&log_lock);
    errno = saved;
    return n;
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    init();
    return do_pwrite(real_pwrite, fd, buf, count, offset);
}
ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    init();
    return do_pwrite(real_pwrite64, fd, buf, count, offset);
}

ssize_t writev(int fd, const struct iovec *iov, int count) {
    init();
    if (!tracked(fd))
        return real_writev(fd, iov, count);
    pthread_mutex_lock(&log_lock);
    off_t at = current_offset(fd);
    ssize_t n = real_writev(fd, iov, count);
    int saved = errno;
    if (n > 0) {
        void *data = gather(iov, count, n);
        emit_locked(EV_WRITE, fd, fds[fd].syncs_writes, at, 0, 0, NULL, NULL, data, (size_t)n);
        free(data);
    }
    pthread_mutex_unlock(&log_lock);
    errno = saved;
    return n;
}

static ssize_t do_pwritev(int fd, const struct iovec *iov, int count, off_t offset,
                          ssize_t (*fn)(int, const struct iovec *, int, off_t), int flags2,
                          int use2) {
    if (!tracked(fd))
        return use2 ? real_pwritev2(fd, iov, count, offset, flags2) : fn(fd, iov, count, offset);
    pthread_mutex_lock(&log_lock);
    off_t at = offset == -1 ? current_offset(fd) : offset;
    ssize_t n = use2 ? real_pwritev2(fd, iov, count, offset, flags2) : fn(fd, iov, count, offset);
    int saved = errno;
    if (n > 0) {
        void *data = gather(iov, count, n);
        /* RWF_DSYNC / RWF_SYNC make this one write durable, like an O_DSYNC descriptor. */
        int syncs = fds[fd].syncs_writes || (use2 && (flags2 & (RWF_DSYNC | RWF_SYNC)));
        emit_locked(EV_WRITE, fd, syncs, at, 0, 0, NULL, NULL, data, (size_t)n);
        free(data);
    }
    pthread_mutex_unlock(&log_lock);
    errno = saved;
    return n;
}

ssize_t pwritev(int fd, const struct iovec *iov, int count, off_t offset) {
    init();
    return do_pwritev(fd, iov, count, offset, real_pwritev, 0, 0);
}
ssize_t pwritev64(int fd, const struct iovec *iov, int count, off_t offset) {
    init();
    return do_pwritev(fd, iov, count, offset, real_pwritev64, 0, 0);
}
ssize_t pwritev2(int fd, const struct iovec *iov, int count, off_t offset, int flags) {
    init();
    if (nosync_all && tracked(fd))
        flags &= ~(RWF_DSYNC | RWF_SYNC);
    return do_pwritev(fd, iov, count, offset, NULL, flags, 1);
}

static int do_ftruncate(int (*fn)(int, off_t), int fd, off_t length) {
    int rc = fn(fd, length);
    if (rc == 0 && tracked(fd))
        emit(EV_TRUNC, fd, 0, length, 0, 0, NULL, NULL, NULL, 0);
    return rc;
}
int ftruncate(int fd, off_t length) {
    init();
    return do_ftruncate(real_ftruncate, fd, length);
}
int ftruncate64(int fd, off_t length) {
    init();
    return do_ftruncate(real_ftruncate64, fd, length);
}

static int do_truncate(int (*fn)(const char *, off_t), const char *path, off_t length) {
    char p[PATH_MAX];
    int watch = active() && canon(AT_FDCWD, path, p) == 0 && under_root(p);
    int rc = fn(path, length);
    if (rc == 0 && watch)
        emit(EV_TRUNC, -1, 0, length, 0, 0, p, NULL, NULL, 0);
    return rc;
}
int truncate(const char *path, off_t length) {
    init();
    return do_truncate(real_truncate, path, length);
}
int truncate64(const char *path, off_t length) {
    init();
    return do_truncate(real_truncate64, path, length);
}

/* Calls that would change a watched file in a way the replayer does not model: logged, so that
 * the replayer refuses the run instead of building wrong images. */
static void unsupported(int fd, const char *what) {
    if (tracked(fd))
        emit(EV_UNSUPPORTED, fd, 0, 0, 0, 0, what, NULL, NULL, 0);
}

int fallocate(int fd, int mode, off_t offset, off_t len) {
    init();
    unsupported(fd, "fallocate");
    return real_fallocate(fd, mode, offset, len);
}
int posix_fallocate(int fd, off_t offset, off_t len) {
    init();
    unsupported(fd, "posix_fallocate");
    return real_posix_fallocate(fd, offset, len);
}
int posix_fallocate64(int fd, off_t offset, off_t len) {
    init();
    unsupported(fd, "posix_fallocate");
    return real_posix_fallocate64(fd, offset, len);
}
ssize_t copy_file_range(int in, off_t *in_off, int out, off_t *out_off, size_t len,
                        unsigned int flags) {
    init();
    unsupported(out, "copy_file_range");
    return real_copy_file_range(in, in_off, out, out_off, len, flags);
}

/* ------------------------------------------------------------------ syncing */

static int dropped(int fd) {
    return nosync_all || (nosync_data && fds[fd].is_lmdb_data) || (nosync_dirs && fds[fd].is_dir);
}

static int do_sync(int (*fn)(int), int fd, uint32_t kind) {
    if (!tracked(fd))
        return fn(fd);
    if (dropped(fd))
        return 0;
    pthread_mutex_lock(&log_lock);
    int64_t id = next_sync_id++;
    emit_locked(EV_SYNC_BEGIN, fd, kind, id, 0, 0, NULL, NULL, NULL, 0);
    pthread_mutex_unlock(&log_lock);
    int rc = fn(fd);
    if (rc == 0)
        emit(EV_SYNC_END, fd, kind, id, 0, 0, NULL, NULL, NULL, 0);
    return rc;
}

int fsync(int fd) {
    init();
    return do_sync(real_fsync, fd, SYNC_FSYNC);
}
int fdatasync(int fd) {
    init();
    return do_sync(real_fdatasync, fd, SYNC_FDATASYNC);
}

int msync(void *addr, size_t length, int flags) {
    init();
    /* Logged for the record; writes through a mapping are invisible here anyway (see mmap). */
    if (active() && nosync_all)
        return 0;
    int rc = real_msync(addr, length, flags);
    if (rc == 0 && active())
        emit(EV_MSYNC, -1, (uint32_t)flags, (int64_t)(intptr_t)addr, (int64_t)length, 0, NULL,
             NULL, NULL, 0);
    return rc;
}

int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags) {
    init();
    int rc = real_sync_file_range(fd, offset, nbytes, flags);
    if (rc == 0 && tracked(fd))
        emit(EV_SYNC_RANGE, fd, flags, offset, nbytes, 0, NULL, NULL, NULL, 0);
    return rc;
}

void sync(void) {
    init();
    if (active() && nosync_all)
        return;
    int64_t id = 0;
    if (active()) {
        pthread_mutex_lock(&log_lock);
        id = next_sync_id++;
        emit_locked(EV_SYNC_ALL_BEGIN, -1, 0, id, 0, 0, NULL, NULL, NULL, 0);
        pthread_mutex_unlock(&log_lock);
    }
    real_sync();
    if (active())
        emit(EV_SYNC_ALL_END, -1, 0, id, 0, 0, NULL, NULL, NULL, 0);
}

int syncfs(int fd) {
    init();
    if (active() && nosync_all)
        return 0;
    int64_t id = 0;
    if (active()) {
        pthread_mutex_lock(&log_lock);
        id = next_sync_id++;
        emit_locked(EV_SYNC_ALL_BEGIN, fd, 0, id, 0, 0, NULL, NULL, NULL, 0);
        pthread_mutex_unlock(&log_lock);
    }
    int rc = real_syncfs(fd);
    if (rc == 0 && active())
        emit(EV_SYNC_ALL_END, fd, 0, id, 0, 0, NULL, NULL, NULL, 0);
    return rc;
}

/* ------------------------------------------------------------------ names */

static int do_rename(int olddirfd, const char *old, int newdirfd, const char *new_,
                     unsigned int flags, int kind) {
    char p1[PATH_MAX], p2[PATH_MAX];
    int watch = active() && canon(olddirfd, old, p1) == 0 && canon(newdirfd, new_, p2) == 0 &&
                (under_root(p1) || under_root(p2));
    int rc;
    if (kind == 0)
        rc = real_rename(old, new_);
    else if (kind == 1)
        rc = real_renameat(olddirfd, old, newdirfd, new_);
    else
        rc = real_renameat2(olddirfd, old, newdirfd, new_, flags);
    if (rc == 0 && watch)
        emit(EV_RENAME, -1, flags, 0, 0, 0, p1, p2, NULL, 0);
    return rc;
}

int rename(const char *old, const char *new_) {
    init();
    return do_rename(AT_FDCWD, old, AT_FDCWD, new_, 0, 0);
}
int renameat(int olddirfd, const char *old, int newdirfd, const char *new_) {
    init();
    return do_rename(olddirfd, old, newdirfd, new_, 0, 1);
}
int renameat2(int olddirfd, const char *old, int newdirfd, const char *new_, unsigned int flags) {
    init();
    return do_rename(olddirfd, old, newdirfd, new_, flags, 2);
}

/* kind: 0 unlink, 1 rmdir, 2 unlinkat */
static int do_remove(int dirfd, const char *path, int is_dir, int at_flags, int kind) {
    char p[PATH_MAX];
    int watch = active() && canon(dirfd, path, p) == 0 && under_root(p);
    int rc;
    if (kind == 0)
        rc = real_unlink(path);
    else if (kind == 1)
        rc = real_rmdir(path);
    else
        rc = real_unlinkat(dirfd, path, at_flags);
    if (rc == 0 && watch)
        emit(is_dir ? EV_RMDIR : EV_UNLINK, -1, 0, 0, 0, 0, p, NULL, NULL, 0);
    return rc;
}

int unlink(const char *path) {
    init();
    return do_remove(AT_FDCWD, path, 0, 0, 0);
}
int rmdir(const char *path) {
    init();
    return do_remove(AT_FDCWD, path, 1, 0, 1);
}
int unlinkat(int dirfd, const char *path, int flags) {
    init();
    return do_remove(dirfd, path, (flags & AT_REMOVEDIR) != 0, flags, 2);
}

static int do_mkdir(int dirfd, const char *path, mode_t mode, int at) {
    char p[PATH_MAX];
    int watch = active() && canon(dirfd, path, p) == 0 && under_root(p);
    int rc = at ? real_mkdirat(dirfd, path, mode) : real_mkdir(path, mode);
    if (rc == 0 && watch) {
        struct stat st;
        uint64_t ino = stat(p, &st) == 0 ? (uint64_t)st.st_ino : 0;
        emit(EV_MKDIR, -1, 0, 0, 0, ino, p, NULL, NULL, 0);
    }
    return rc;
}

int mkdir(const char *path, mode_t mode) {
    init();
    return do_mkdir(AT_FDCWD, path, mode, 0);
}
int mkdirat(int dirfd, const char *path, mode_t mode) {
    init();
    return do_mkdir(dirfd, path, mode, 1);
}

static int do_link(int olddirfd, const char *old, int newdirfd, const char *new_, int flags,
                   int at) {
    char p1[PATH_MAX], p2[PATH_MAX];
    int watch = active() && canon(olddirfd, old, p1) == 0 && canon(newdirfd, new_, p2) == 0 &&
                (under_root(p1) || under_root(p2));
    int rc = at ? real_linkat(olddirfd, old, newdirfd, new_, flags) : real_link(old, new_);
    if (rc == 0 && watch)
        emit(EV_UNSUPPORTED, -1, 0, 0, 0, 0, "link", p2, NULL, 0);
    return rc;
}

int link(const char *old, const char *new_) {
    init();
    return do_link(AT_FDCWD, old, AT_FDCWD, new_, 0, 0);
}
int linkat(int olddirfd, const char *old, int newdirfd, const char *new_, int flags) {
    init();
    return do_link(olddirfd, old, newdirfd, new_, flags, 1);
}

/* ------------------------------------------------------------------ mappings */

static void after_mmap(void *addr, int prot, int flags, int fd) {
    if (addr != MAP_FAILED && tracked(fd) && (prot & PROT_WRITE) && (flags & MAP_SHARED)) {
        char link[64], path[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, path, sizeof path - 1);
        path[n > 0 ? n : 0] = '\0';
        emit(EV_MMAP_SHARED_WRITE, fd, (uint32_t)prot, 0, 0, 0, path, NULL, NULL, 0);
    }
}

void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset) {
    init();
    void *p = real_mmap(addr, length, prot, flags, fd, offset);
    after_mmap(p, prot, flags, fd);
    return p;
}
void *mmap64(void *addr, size_t length, int prot, int flags, int fd, off_t offset) {
    init();
    void *p = real_mmap64(addr, length, prot, flags, fd, offset);
    after_mmap(p, prot, flags, fd);
    return p;
}
