#!/usr/bin/env python3
"""The documentation test (see .ci/docs-test, which runs this): every shell block of README.md and
docs/*.md, run as written in a fresh clone of HEAD.

What it does, in order:

1. Clones the checkout's HEAD into a temporary directory (nothing from the working tree leaks in)
   and gives the clone a fresh HOME (CLI profiles, completions and the like land there).
   CARGO_TARGET_DIR points at target/docs-test in the original checkout, and the clone's `target`
   is a link to it, so `target/release/...` in the docs resolves and a repeated run reuses the
   build.
2. Builds, once and up front, what the docs' `cargo run` commands will run (`cargo build --locked`
   with the same profile and package options), so the per-block timeouts measure the commands, not
   a cold build. The time it takes is printed.
3. Runs each page (README.md first, then docs/*.md in name order) in one bash, in the clone, block
   after block, so variables set in one block carry to the next. Every command runs with `set -e`
   and `pipefail` semantics, including the commands of `a && b` lists, and is echoed before it
   runs. `curl` is a shell function that adds `--fail-with-body` (unless the command already says
   `-f`/`--fail...`), so an HTTP error status fails the command too.
4. Fails (exit 1) on the first command that fails, naming the page, the block and the command's
   lines, or on a block that runs longer than its timeout (DOCS_TEST_TIMEOUT seconds, default
   120). Kills every process it started (the pages' servers included) whatever happens, and
   removes the clone (DOCS_TEST_KEEP=1 keeps it, for debugging).

What the docs can say about a block, on the line before its opening fence (blank lines between
are allowed):

    <!-- not run by the docs test: REASON -->
        The block is skipped and listed, with its reason, in the output.

    <!-- docs test: in the background, ready when http://127.0.0.1:8080/readyz answers -->
        The block stands for another terminal running a server: it runs in its own bash in the
        background (output to a log, shown if something fails), and the page goes on once the URL
        answers with a 2xx (or, with `port N` instead of a URL, once the TCP port accepts), polled
        until the block's deadline. The URL or port must not answer before the block starts.

And about one command, at the end of its (last) line:

    some-command ...   # expected to fail (...)
        The command must fail; the page goes on when it does, and the test fails if it succeeds.

Blocks are fenced ```sh, ```bash, ```shell or ```console (whose commands are the lines after a
`$ ` prompt); blocks in other languages are not shell and are left alone.
"""

import ctypes
import fcntl
import hashlib
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SHELL_LANGS = {"sh", "bash", "shell", "console"}
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)")
MARKER = re.compile(r"^\s*<!--\s*(.*?)\s*-->\s*$")
SKIP = re.compile(r"^not run by the docs test:\s*(.+)$")
DIRECTIVE = re.compile(r"^docs test:\s*(.+)$")
EXPECTED_FAILURE = re.compile(r"\s#\s*expected to fail\b")
HEREDOC = re.compile(r"(?<![<\w])<<(-?)\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")

TIMEOUT = float(os.environ.get("DOCS_TEST_TIMEOUT", "120"))
KEEP = os.environ.get("DOCS_TEST_KEEP") == "1"


class DocsError(Exception):
    """A problem with the docs themselves (a marker it does not understand, a broken command)."""


class Block:
    def __init__(self, doc, number, fence_line, lang, lines, marker):
        self.doc = doc  # path relative to the repository
        self.number = number  # 1-based among the page's shell blocks
        self.fence_line = fence_line  # line of the opening fence
        self.lang = lang
        self.lines = lines  # the block's text lines
        self.skip_reason = None
        self.background = False
        self.ready = []  # URLs or port numbers (background blocks)
        if marker is not None:
            self.apply_marker(marker)

    def where(self):
        return f"{self.doc}:{self.fence_line}"

    def apply_marker(self, text):
        skip = SKIP.match(text)
        directive = DIRECTIVE.match(text)
        if skip:
            self.skip_reason = skip.group(1)
        elif directive:
            words = directive.group(1)
            if not words.startswith("in the background"):
                raise DocsError(f"{self.where()}: unknown docs test directive: {text!r}")
            self.background = True
            self.ready = re.findall(r"https?://\S+", words) + [int(p) for p in re.findall(r"\bport (\d+)", words)]
            if not self.ready:
                raise DocsError(f"{self.where()}: a background block needs `ready when URL answers` or `port N`")
        elif "docs test" in text:
            raise DocsError(f"{self.where()}: a comment about the docs test that it does not understand: {text!r}")

    def commands(self):
        """The block's commands: (first line, last line, text), line numbers in the document."""
        first = self.fence_line + 1
        if self.lang == "console":
            return console_commands(self.lines, first, self.where())
        return split_commands(self.lines, first, self.where())


def parse_document(root, doc):
    blocks = []
    lines = open(os.path.join(root, doc), encoding="utf-8").read().split("\n")
    i = 0
    marker = None  # the last HTML comment line, while only blank lines follow it
    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        if fence:
            char, lang = fence.group(1), fence.group(2).lower()
            body = []
            j = i + 1
            while j < len(lines) and not re.match(r"^ {0,3}" + re.escape(char[0]) + "{" + str(len(char)) + r",}\s*$", lines[j]):
                body.append(lines[j])
                j += 1
            if lang in SHELL_LANGS:
                blocks.append(Block(doc, len(blocks) + 1, i + 1, lang, body, marker))
            elif marker is not None and ("docs test" in marker):
                raise DocsError(f"{doc}:{i + 1}: a docs test comment before a `{lang or 'plain'}` block, which is not run anyway")
            marker = None
            i = j + 1
            continue
        m = MARKER.match(line)
        if m:
            marker = m.group(1)
        elif line.strip():
            marker = None
        i += 1
    return blocks


def bash_complete(text):
    """Whether `text` is one or more complete shell commands (bash -n accepts it)."""
    if re.search(r"\\\s*$", text):
        return False, ""
    result = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
    return result.returncode == 0, result.stderr.strip()


def split_commands(lines, first, where):
    commands = []
    current, start, heredocs = [], None, []
    for offset, line in enumerate(lines):
        number = first + offset
        if not current and not heredocs and (not line.strip() or line.lstrip().startswith("#")):
            continue  # blank and comment lines between commands
        if start is None:
            start = number
        current.append(line)
        if heredocs:
            delimiter, strip_tabs = heredocs[0]
            if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                heredocs.pop(0)
            if heredocs:
                continue
        else:
            for dash, _quote, word in HEREDOC.findall(line):
                heredocs.append((word, dash == "-"))
            if heredocs:
                continue
        text = "\n".join(current)
        ok, _ = bash_complete(text)
        if ok:
            commands.append((start, number, text))
            current, start = [], None
    if current:
        _, error = bash_complete("\n".join(current))
        raise DocsError(f"{where}: lines {start}-{first + len(lines) - 1} are not a complete command: {error}")
    return commands


def console_commands(lines, first, where):
    commands = []
    offset = 0
    while offset < len(lines):
        line = lines[offset]
        if not line.startswith("$ "):
            offset += 1  # output
            continue
        start = first + offset
        text = [line[2:]]
        while text[-1].rstrip().endswith("\\") and offset + 1 < len(lines):
            offset += 1
            text.append(lines[offset])
        commands.append((start, first + offset, "\n".join(text)))
        offset += 1
    return commands


# --- processes --------------------------------------------------------------------------------------


def become_subreaper():
    """Orphaned descendants (a page's servers, after its shell exits) are re-parented to this
    process instead of init, so they can all be found, killed and reaped."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def descendants():
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        state, ppid = fields[0], int(fields[1])
        if state != "Z":
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [os.getpid()]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_everything(grace=15.0):
    """SIGTERM to every descendant, SIGKILL to what is left after `grace` seconds; reaps them all."""
    pids = descendants()
    if not pids:
        reap()
        return
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        reap()
        if not descendants():
            return
        time.sleep(0.1)
    for pid in descendants():
        print(f"docs test: process {pid} ignored SIGTERM; killing it", file=sys.stderr)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while descendants() and time.monotonic() < deadline:
        reap()
        time.sleep(0.1)
    reap()


def on_signal(number, _frame):
    print(f"\ndocs test: stopped by signal {number}; stopping what it started", file=sys.stderr)
    raise SystemExit(128 + number)


# --- the page's shell -------------------------------------------------------------------------------

PRELUDE = r"""
set -e -o pipefail
shopt -s inherit_errexit
__docs_ev() { printf '%s\n' "$*" >&__FD__; }
trap '__docs_ev "fail $?"' ERR
__docs_show() { sed -e '1s/^/$ /' -e '2,$s/^/> /' "$1"; }
__docs_check() { [ "$1" -eq 0 ] || { __docs_ev "fail $1"; exit "$1"; }; }
# An HTTP error status fails a curl command, as a human reading the output would see it fail.
curl() {
  local arg
  for arg in "$@"; do
    case $arg in
      --fail|--fail-with-body|--fail-early) command curl "$@" || return $?; return 0 ;;
      --*) ;;
      -*f*) [[ $arg =~ ^-[A-Za-z]+$ ]] && { command curl "$@" || return $?; return 0; } ;;
    esac
  done
  command curl --fail-with-body "$@" || return $?
}
__docs_answers() {
  case $1 in
    http://*|https://*) command curl -sf -o /dev/null --max-time 2 "$1" ;;
    *) (exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null ;;
  esac
}
__docs_background() {
  local script=$1 log=$2 deadline=$((SECONDS + $3)) ready pid
  shift 3
  for ready in "$@"; do
    if __docs_answers "$ready"; then
      echo "docs test: $ready already answers before this block started (a server of an earlier block or of someone else?)" >&2
      return 1
    fi
  done
  bash -e -o pipefail "$script" >"$log" 2>&1 &
  pid=$!
  __docs_ev "background $pid $log"
  for ready in "$@"; do
    until __docs_answers "$ready"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "docs test: the block ended before $ready answered; its output:" >&2
        tail -n 40 "$log" | sed 's/^/    /' >&2
        return 1
      fi
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "docs test: $ready did not answer in time" >&2
        return 1
      fi
      sleep 0.2
    done
    echo "($ready answers)"
  done
}
"""


def write_page_script(workdir, blocks, status_fd):
    lines = [PRELUDE.replace("__FD__", str(status_fd))]
    count = 0
    for block in blocks:
        if block.skip_reason:
            continue
        k = block.number
        lines.append(f"__docs_ev 'block {k}'")
        title = f"── {block.where()} (block {k}{', in the background' if block.background else ''}) "
        lines.append(f"printf '\\n%s\\n' {shlex.quote(title + '─' * max(3, 78 - len(title)))}")
        if block.background:
            script = os.path.join(workdir, f"block{k}.sh")
            with open(script, "w") as f:
                f.write("\n".join(block.lines) + "\n")
            log = os.path.join(workdir, f"block{k}.log")
            lines.append(f"__docs_ev 'cmd {k} {block.fence_line + 1} {block.fence_line + len(block.lines)}'")
            lines.append(f"__docs_show {shlex.quote(script)}")
            ready = " ".join(shlex.quote(str(r)) for r in block.ready)
            lines.append(f"__docs_background {shlex.quote(script)} {shlex.quote(log)} {int(TIMEOUT) - 2} {ready}")
        else:
            for first, last, text in block.commands():
                count += 1
                shown = os.path.join(workdir, f"cmd{count}.txt")
                with open(shown, "w") as f:
                    f.write(text + "\n")
                lines.append(f"__docs_ev 'cmd {k} {first} {last}'")
                lines.append(f"__docs_show {shlex.quote(shown)}")
                if EXPECTED_FAILURE.search(text):
                    lines.append("__docs_status=0")
                    lines.append("{ " + text + "\n} || __docs_status=$?")
                    lines.append(
                        'if [ "$__docs_status" -eq 0 ]; then __docs_ev unexpected; exit 1; fi; '
                        'echo "(failed with status $__docs_status, as expected)"'
                    )
                else:
                    lines.append(text)
                    lines.append("__docs_check $?")
        lines.append(f"__docs_ev 'end {k}'")
    path = os.path.join(workdir, "page.sh")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def run_page(doc, blocks, clone, env, workdir):
    """Runs one page's blocks; returns None, or the failure as text."""
    read_fd, write_fd = os.pipe()
    script = write_page_script(workdir, blocks, write_fd)
    process = subprocess.Popen(
        ["bash", script], cwd=clone, env=env, pass_fds=[write_fd], start_new_session=True, stdin=subprocess.DEVNULL
    )
    os.close(write_fd)
    by_number = {b.number: b for b in blocks}
    current_block, current_cmd, deadline = None, None, None
    logs = []
    failure = None
    buffer = b""

    def handle(event):
        nonlocal current_block, current_cmd, deadline, failure
        word, *rest = event.split()
        if word == "block":
            current_block, current_cmd = by_number[int(rest[0])], None
            deadline = time.monotonic() + TIMEOUT
        elif word == "cmd":
            current_cmd = (int(rest[1]), int(rest[2]))
        elif word == "end":
            current_block, current_cmd, deadline = None, None, None
        elif word == "background":
            logs.append(rest[1])
        elif word == "fail" and failure is None:
            failure = f"exited with status {rest[0]}"
        elif word == "unexpected":
            failure = "succeeded, but the docs say it fails (`# expected to fail`)"

    def drain(wait):
        nonlocal buffer
        ready, _, _ = select.select([read_fd], [], [], wait)
        if not ready:
            return
        data = os.read(read_fd, 65536)
        buffer += data
        while b"\n" in buffer:
            event, buffer = buffer.split(b"\n", 1)
            handle(event.decode())

    timed_out = False
    try:
        while process.poll() is None:
            wait = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
            drain(wait)
            if deadline is not None and time.monotonic() >= deadline and process.poll() is None:
                timed_out = True
                break
        drain(0)
        drain(0)
    finally:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        os.close(read_fd)

    if timed_out:
        failure = f"did not finish within the block's {TIMEOUT:.0f} s"
    elif process.returncode != 0 and failure is None:
        failure = f"ended the page's shell with status {process.returncode}"
    elif process.returncode == 0:
        failure = None
    if failure is None:
        return None
    where = f"{doc}, block {current_block.number} ({current_block.where()})" if current_block else doc
    text = [f"{where}: the command at"]
    if current_cmd and current_block:
        first, last = current_cmd
        text[0] += f" {doc}:{first}" + (f"-{last}" if last != first else "") + f" {failure}:"
        source = open(os.path.join(clone, doc), encoding="utf-8").read().split("\n")
        text += ["    " + line for line in source[first - 1 : last]]
    else:
        text = [f"{where}: {failure}"]
    for log in logs:
        if os.path.exists(log):
            text.append(f"output of the background block ({os.path.basename(log)}), last lines:")
            with open(log, errors="replace") as f:
                text += ["    " + line.rstrip("\n") for line in f.readlines()[-30:]]
    return "\n".join(text)


# --- building ---------------------------------------------------------------------------------------

BUILD_FLAGS_WITH_VALUE = {"-p", "--package", "--bin", "--features", "-F", "--profile", "--example"}
BUILD_FLAGS = {"--release", "-r", "--all-features", "--no-default-features"}


def cargo_builds(blocks):
    """`cargo build` commands for every distinct `cargo run` of the runnable blocks."""
    builds = []
    for block in blocks:
        if block.skip_reason:
            continue
        for line in block.lines:
            for match in re.finditer(r"\bcargo run\b([^)&|;#]*)", line):
                options = match.group(1).split(" -- ")[0]
                words = shlex.split(options.replace("\\", " "))
                build = ["cargo", "build", "--locked"]
                i = 0
                while i < len(words):
                    word = words[i]
                    if word == "--":
                        break
                    if word in BUILD_FLAGS:
                        build.append(word)
                    elif word in BUILD_FLAGS_WITH_VALUE and i + 1 < len(words):
                        build += [word, words[i + 1]]
                        i += 1
                    elif "=" in word and word.split("=")[0] in BUILD_FLAGS_WITH_VALUE:
                        build.append(word)
                    i += 1
                if build not in builds:
                    builds.append(build)
    return builds


# --- facts the docs state ---------------------------------------------------------------------------


def version(text):
    parts = [int(p) for p in re.findall(r"\d+", text)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


def check_rust_version(clone, env):
    """README's "Rust toolchain (X+)" must be the workspace's rust-version, and no locked dependency
    that was built may need more."""
    readme = open(os.path.join(clone, "README.md"), encoding="utf-8").read()
    stated = re.search(r"Rust toolchain \((\d+\.\d+(?:\.\d+)?)\+", readme)
    if not stated:
        return []
    problems = []
    manifest = open(os.path.join(clone, "Cargo.toml"), encoding="utf-8").read()
    declared = re.search(r'^rust-version\s*=\s*"([^"]+)"', manifest, re.M)
    if not declared or version(declared.group(1)) != version(stated.group(1)):
        problems.append(
            f"README.md says Rust {stated.group(1)}+, the workspace's rust-version is "
            f"{declared.group(1) if declared else 'not set'}"
        )
    registry = os.path.join(env["CARGO_HOME"], "registry", "src")
    sources = [os.path.join(registry, d) for d in os.listdir(registry)] if os.path.isdir(registry) else []
    lock = open(os.path.join(clone, "Cargo.lock"), encoding="utf-8").read()
    needed, needer = (0, 0, 0), None
    for name, ver in re.findall(r'\[\[package\]\]\nname = "([^"]+)"\nversion = "([^"]+)"\nsource = "registry', lock):
        for src in sources:
            path = os.path.join(src, f"{name}-{ver}", "Cargo.toml")
            if os.path.exists(path):
                m = re.search(r'^rust-version\s*=\s*"([^"]+)"', open(path, encoding="utf-8").read(), re.M)
                if m and version(m.group(1)) > needed:
                    needed, needer = version(m.group(1)), f"{name} {ver}"
                break
    if needed > version(stated.group(1)):
        problems.append(f"README.md says Rust {stated.group(1)}+, but {needer} needs {'.'.join(map(str, needed))}")
    return problems


# --- main ---------------------------------------------------------------------------------------------


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def restore_mtimes(clone):
    """Gives every file of the clone the time of the last commit that changed it. Cargo judges a
    workspace crate by its files' mtimes: with checkout times, every run would rebuild them all."""
    log = git("-c", "core.quotepath=off", "log", "--format=format:@%ct", "--name-only", "HEAD", cwd=clone)
    times, when = {}, None
    for line in log.split("\n"):
        if line.startswith("@") and line[1:].isdigit():
            when = int(line[1:])
        elif line and when is not None:
            times.setdefault(line, when)
    for path in git("-c", "core.quotepath=off", "ls-files", cwd=clone).split("\n"):
        full = os.path.join(clone, path)
        if path in times and os.path.isfile(full) and not os.path.islink(full):
            os.utime(full, (times[path], times[path]))


def main():
    become_subreaper()
    for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(number, on_signal)
    repo = git("rev-parse", "--show-toplevel", cwd=os.path.dirname(os.path.abspath(__file__)))
    head = git("rev-parse", "HEAD", cwd=repo)
    if git("status", "--porcelain", "--untracked-files=no", cwd=repo):
        print("docs test: the working tree has uncommitted changes; they are not tested (HEAD is)", file=sys.stderr)
    target = os.path.join(repo, "target", "docs-test")
    os.makedirs(target, exist_ok=True)
    # One temporary path per checkout, and a lock: two runs at once would fight over the docs'
    # ports (8080, 9100-9109) anyway.
    temp = os.path.join(tempfile.gettempdir(), "tokenvault-docs-test-" + hashlib.sha1(repo.encode()).hexdigest()[:12])
    lock = open(temp + ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"docs test: another docs test of {repo} is running ({temp})", file=sys.stderr)
        return 1
    shutil.rmtree(temp, ignore_errors=True)  # left over by a run that was killed
    os.makedirs(temp)
    clone = os.path.join(temp, "tokenvault")
    failures, skipped, report = [], [], []
    build_seconds = docs_seconds = 0.0
    started = time.monotonic()
    try:
        subprocess.run(["git", "clone", "--quiet", "--no-checkout", repo, clone], check=True)
        subprocess.run(["git", "checkout", "--quiet", "--detach", head], cwd=clone, check=True)
        restore_mtimes(clone)
        os.symlink(target, os.path.join(clone, "target"))
        print(f"docs test: {head[:12]} cloned into {clone}; CARGO_TARGET_DIR={target}")

        docs = ["README.md"] + sorted(
            os.path.join("docs", name) for name in os.listdir(os.path.join(clone, "docs")) if name.endswith(".md")
        )
        pages = [(doc, parse_document(clone, doc)) for doc in docs]

        home = os.path.join(temp, "home")
        os.makedirs(home)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENVAULT_") and not k.startswith("XDG_")}
        env["CARGO_HOME"] = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
        env["RUSTUP_HOME"] = os.environ.get("RUSTUP_HOME", os.path.expanduser("~/.rustup"))
        env["HOME"] = home
        env["CARGO_TARGET_DIR"] = target

        build_started = time.monotonic()
        for build in cargo_builds([b for _, blocks in pages for b in blocks]):
            print(f"docs test: building ahead of the docs: {' '.join(build)}", flush=True)
            one = time.monotonic()
            subprocess.run(build, cwd=clone, env=env, check=True, stdin=subprocess.DEVNULL)
            report.append(f"  {' '.join(build)}: {time.monotonic() - one:.0f} s")
        build_seconds = time.monotonic() - build_started

        for problem in check_rust_version(clone, env):
            failures.append(problem)

        docs_started = time.monotonic()
        for doc, blocks in pages:
            run = [b for b in blocks if not b.skip_reason]
            for block in blocks:
                if block.skip_reason:
                    skipped.append(f"  {block.where()}: {block.skip_reason}")
            if not run:
                continue
            print(f"\n═══ {doc}: {len(run)} block(s) to run, {len(blocks) - len(run)} skipped", flush=True)
            workdir = os.path.join(temp, "pages", doc.replace("/", "_"))
            os.makedirs(workdir)
            one = time.monotonic()
            failure = run_page(doc, blocks, clone, env, workdir)
            kill_everything()
            report.append(f"  {doc}: {len(run)} block(s) in {time.monotonic() - one:.0f} s" + (" (FAILED)" if failure else ""))
            if failure:
                failures.append(failure)  # and on to the next page: they do not depend on each other
        docs_seconds = time.monotonic() - docs_started
    except DocsError as error:
        failures.append(str(error))
    except subprocess.CalledProcessError as error:
        failures.append(f"{' '.join(error.cmd)} failed with status {error.returncode}")
    finally:
        kill_everything()
        if KEEP:
            print(f"docs test: kept {temp}")
        else:
            shutil.rmtree(temp, ignore_errors=True)

    print("\n═══ docs test summary")
    if skipped:
        print("not run (marked in the docs):")
        print("\n".join(skipped))
    print("ran:")
    print("\n".join(report))
    print(f"  build {build_seconds:.0f} s, docs {docs_seconds:.0f} s, total {time.monotonic() - started:.0f} s")
    if failures:
        print("\nDOCS TEST FAILED:", file=sys.stderr)
        for failure in failures:
            print(failure, file=sys.stderr)
        return 1
    print("docs test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
