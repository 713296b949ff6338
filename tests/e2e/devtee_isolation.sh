#!/bin/sh
# The development TEE keeps its state directory out of every workload's reach,
# by every route, and keeps workloads apart: working directory, descriptors,
# /proc/PID/cwd and /proc/PID/root, bind mounts, another workload's process
# and socket, a stolen socket, an empty message, and the same as a user that
# is not root.
set -u
. "$(dirname "$0")/lib.sh"
S=$TMP/base/state
NOLEAK=ASAN_OPTIONS=detect_leaks=0
dt() { "$CLOISTER" devtee "$@"; }
mkdir -p "$TMP/base"
expect_exit 0 dt root --state "$S"
key_leaked() { grep -q "PRIVATE KEY" "$OUT" "$ERR"; }

# --- the working directory: started inside the state directory
(cd "$S" && expect_exit 1 "$CLOISTER" devtee run --state . -- /bin/cat root.key)
key_leaked && fail "the workload read root.key through its inherited working directory"
(cd "$S" && expect_exit 0 "$CLOISTER" devtee run --state . -- /bin/sh -c 'pwd; ls -A')
[ "$(head -1 "$OUT")" = / ] || fail "a workload started inside the state directory starts in /: $(cat "$OUT")"
# A working directory below the state directory does not lead into it either.
mkdir -p "$S/sub"
(cd "$S/sub" && expect_exit 1 "$CLOISTER" devtee run --state "$S" -- /bin/cat ../root.key)
key_leaked && fail "the workload read root.key from a subdirectory of the state directory"
# An ordinary working directory is kept.
mkdir -p "$TMP/work"
(cd "$TMP/work" && expect_exit 0 "$CLOISTER" devtee run --state "$S" -- /bin/pwd)
[ "$(cat "$OUT")" = "$TMP/work" ] || fail "the working directory is kept: $(cat "$OUT")"

# --- descriptors: stdio naming the state directory or a file in it is refused
expect_exit 125 sh -c "exec \"\$0\" devtee run --state '$S' -- /bin/cat <'$S/root.key'" "$CLOISTER"
key_leaked && fail "the workload read root.key on its stdin"
grep -q "descriptor 0" "$ERR" || fail "the refusal names the descriptor: $(cat "$ERR")"
expect_exit 125 sh -c "exec \"\$0\" devtee run --state '$S' -- /bin/true 2>'$S/log'" "$CLOISTER"
expect_exit 125 sh -c "exec \"\$0\" devtee run --state '$S' -- /bin/true <'$S'" "$CLOISTER"
# Nothing else is inherited, even descriptors the caller left open without close-on-exec.
expect_exit 0 sh -c "exec 7<'$S/root.key'; exec \"\$0\" devtee run --state '$S' -- /bin/sh -c 'cat <&7; exit 0'" "$CLOISTER"
key_leaked && fail "the workload read root.key through an inherited descriptor"

# --- /proc: a same-user process whose working directory is the state directory
(cd "$S" && exec sleep 60) &
holder=$!
cat >"$TMP/procscan.sh" <<'EOF'
#!/bin/sh
# Try every /proc route to the key; print what worked.
for p in /proc/[0-9]* /proc/"$1"; do
	for r in "$p/cwd/root.key" "$p/root$2/root.key" "$p/cwd/seal.key"; do
		cat "$r" 2>/dev/null && echo "LEAK $r"
	done
done
ls /proc | grep -c '^[0-9]' >&2
exit 0
EOF
chmod +x "$TMP/procscan.sh"
(cd "$S" && expect_exit 0 "$CLOISTER" devtee run --state "$S" -- "$TMP/procscan.sh" "$holder" "$S")
key_leaked && fail "the workload read the key through /proc: $(grep LEAK "$OUT")"
grep -q LEAK "$OUT" && fail "a /proc route reached the state directory: $(grep LEAK "$OUT")"
[ "$(tail -1 "$ERR")" -le 4 ] || fail "the workload sees processes outside its namespace: $(tail -1 "$ERR")"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null

# --- bind mounts of the state directory and of a directory above it (root only)
if [ "$(id -u)" = 0 ] && mkdir -p "$TMP/view1" "$TMP/view2" &&
	mount --bind "$TMP/base" "$TMP/view1" 2>/dev/null; then
	mount --bind "$S" "$TMP/view2"
	expect_exit 0 dt run --state "$S" -- /bin/sh -c \
		"cat '$TMP/view1/state/root.key' '$TMP/view2/root.key' '$TMP/view2/seal.key' 2>/dev/null; exit 0"
	key_leaked && fail "the workload read root.key through a bind mount"
	[ -s "$OUT" ] && fail "the workload read the state directory through a bind mount"
	umount "$TMP/view2" "$TMP/view1"
fi

# --- another workload: its processes cannot be named, traced or robbed of descriptors
dt run --state "$S" -- /bin/sh -c "exec sleep 302.$$" >/dev/null 2>&1 &
vplat=$!
i=0
while ! victim=$(pgrep -x -f "sleep 302.$$") && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
cat >"$TMP/thief.py" <<'EOF'
import ctypes, errno, os, sys
victim = int(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
def fails(what, fn, *want):
    try:
        fn()
    except OSError as e:
        if want and e.errno not in want:
            print("UNEXPECTED", what, e.errno)
        return
    print("REACHED", what)
fails("pidfd_open", lambda: os.pidfd_open(victim), errno.ESRCH)
fails("kill", lambda: os.kill(victim, 0), errno.ESRCH)
fails("mem", lambda: open("/proc/%d/mem" % victim, "rb"), errno.ENOENT)
fails("fd", lambda: os.listdir("/proc/%d/fd" % victim), errno.ENOENT)
# Even for a process it can name (its own), descriptors cannot be taken.
own = os.pidfd_open(os.getpid())
r = libc.syscall(438, own, 0, 0)  # pidfd_getfd
if r >= 0 or ctypes.get_errno() != errno.EPERM:
    print("REACHED pidfd_getfd", r, ctypes.get_errno())
r = libc.syscall(312, os.getpid(), os.getppid(), 0, 0, 0)  # kcmp
if r >= 0 or ctypes.get_errno() != errno.EPERM:
    print("REACHED kcmp", r, ctypes.get_errno())
# No new namespaces, no mounts.
r = libc.unshare(0x10000000)  # CLONE_NEWUSER
if r == 0 or ctypes.get_errno() != errno.EPERM:
    print("REACHED unshare", r, ctypes.get_errno())
r = libc.umount2(b"/proc", 2)
if r == 0:
    print("REACHED umount")
print("done")
EOF
if [ -n "$victim" ]; then
	expect_exit 0 dt run --state "$S" -- /usr/bin/env "$NOLEAK" python3 "$TMP/thief.py" "$victim"
	grep -q '^done$' "$OUT" || fail "the thief did not run to its end: $(cat "$OUT" "$ERR")"
	grep -E "REACHED|UNEXPECTED" "$OUT" >&2 && fail "a workload reached another workload"
else
	fail "the victim workload did not start"
fi
kill "$vplat" 2>/dev/null
wait "$vplat" 2>/dev/null

# --- a stolen socket: requests from a process outside the workload are refused
cat >"$TMP/fence.py" <<'EOF'
# fence.py PATH: receive a descriptor on a unix socket, ask it for a report.
import os, socket, struct, sys
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(sys.argv[1]); srv.listen(1); srv.settimeout(20)
c, _ = srv.accept()
msg, fds, _, _ = socket.recv_fds(c, 16, 1)
s = socket.socket(fileno=fds[0])
s.settimeout(10)
s.send(struct.pack("<HH", 1, 64) + b"\x11" * 64)
r = s.recv(4096)
status = struct.unpack("<H", r[:2])[0]
print("status", status, "len", len(r))
c.send(b"x")
EOF
cat >"$TMP/leak.py" <<'EOF'
# Inside the workload: hand fd 3 to the fence, then ask for a report itself.
import os, socket, struct, sys
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
u.connect(sys.argv[1])
socket.send_fds(u, [b"s"], [int(os.environ["CLOISTER_DEVTEE_FD"])])
u.settimeout(20); u.recv(1)
s = socket.socket(fileno=int(os.environ["CLOISTER_DEVTEE_FD"]))
s.settimeout(10)
s.send(b"")  # an empty message is answered, and does not silence the platform
r = s.recv(4096)
print("empty", struct.unpack("<H", r[:2])[0])
s.send(struct.pack("<HH", 1, 64) + b"\x22" * 64)
r = s.recv(4096)
print("own", struct.unpack("<H", r[:2])[0], len(r))
s.detach()
EOF
python3 "$TMP/fence.py" "$TMP/fence.sock" >"$TMP/fence.out" 2>&1 &
fence=$!
i=0
while [ ! -S "$TMP/fence.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
expect_exit 0 dt run --state "$S" -- /usr/bin/env "$NOLEAK" python3 "$TMP/leak.py" "$TMP/fence.sock"
wait "$fence"
grep -q "^status 12 len 4$" "$TMP/fence.out" ||
	fail "a process outside the workload got an answer on its socket: $(cat "$TMP/fence.out")"
grep -q "^empty [1-9][0-9]*$" "$OUT" || fail "an empty message is refused as malformed: $(cat "$OUT" "$ERR")"
grep -q "^own 0 516$" "$OUT" || fail "the workload's own request after both is answered: $(cat "$OUT" "$ERR")"

# --- the same as a user who is not root (a user namespace instead of privilege)
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	U=$TMP/user
	mkdir -p "$U/work"
	chmod 711 "$TMP"
	chown -R nobody "$U"
	asuser() { setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$U" "$@"; }
	expect_exit 0 asuser "$CLOISTER" devtee root --state "$U/state"
	(cd "$U/state" && expect_exit 1 asuser "$CLOISTER" devtee run --state . -- /bin/cat root.key)
	key_leaked && fail "an unprivileged user's workload read root.key"
	(cd "$U/work" && expect_exit 0 asuser "$CLOISTER" devtee run --state "$U/state" -- \
		/usr/bin/env "$NOLEAK" "$CLOISTER" agent evidence --report-data 0102 -o "$U/work/r.bin")
	expect_exit 0 "$CLOISTER" verify --devtee-root "$U/state/root.pem" --report-data 0102 "$U/work/r.bin"
	(cd "$U/work" && expect_exit 0 asuser "$CLOISTER" devtee run --state "$U/state" -- "$TMP/procscan.sh" 1 "$U/state")
	grep -q LEAK "$OUT" && fail "an unprivileged workload reached the state through /proc"
fi

finish
