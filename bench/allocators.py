"""Allocators the suite compares: where each library is and which version it is.

A spec is a comma-separated list of names; known names are libarena, glibc,
jemalloc, mimalloc and tcmalloc, and name=/path/to/lib.so adds any other
allocator (run under LD_PRELOAD like the rest). "all" means every known one.
"""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name: (Debian package, shared object inside the package, or None for libc)
KNOWN = {
    "glibc": ("libc6", None),
    "jemalloc": ("libjemalloc2", "libjemalloc.so.2"),
    "mimalloc": ("libmimalloc2.0", "libmimalloc.so.2"),
    "tcmalloc": ("libtcmalloc-minimal4", "libtcmalloc_minimal.so.4"),
}
BASELINES = ["glibc", "jemalloc", "mimalloc", "tcmalloc"]
DEFAULT = ["libarena"] + BASELINES


def _out(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def package_version(pkg):
    return _out(["dpkg-query", "-W", "-f=${Version}", pkg])


def package_file(pkg, soname):
    """Path of soname as installed by pkg (dpkg -L), or None."""
    for line in _out(["dpkg", "-L", pkg]).splitlines():
        if os.path.basename(line) == soname and os.path.exists(line):
            return line
    return None


def try_install(pkg, log):
    """apt-get install pkg when root; True when it is installed afterwards."""
    if os.geteuid() != 0 or not _out(["sh", "-c", "command -v apt-get"]):
        return False
    log(f"installing {pkg} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-qq", pkg], env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return bool(package_version(pkg))


def repo_version():
    return _out(["git", "-C", ROOT, "describe", "--always", "--dirty", "--tags"]) or "unknown"


def resolve(spec, log=print, install=True):
    """List of dicts {name, lib, version, baseline} for the allocators in spec
    that can run here. Each one that cannot is reported with one line."""
    names = DEFAULT if spec in (None, "", "all") else [s.strip() for s in spec.split(",") if s.strip()]
    result = []
    for item in names:
        if "=" in item:
            name, path = item.split("=", 1)
            path = os.path.abspath(path)
            if not os.path.exists(path):
                log(f"skipping {name}: {path} does not exist")
                continue
            st = os.stat(path)
            result.append({"name": name, "lib": path, "baseline": False,
                           "version": f"{path} ({st.st_size} bytes, mtime {int(st.st_mtime)})"})
        elif item == "libarena":
            path = os.path.join(ROOT, "lib", "libarena.so")
            if not os.path.exists(path):
                log("skipping libarena: lib/libarena.so is not built (run make)")
                continue
            result.append({"name": "libarena", "lib": os.path.realpath(path), "baseline": False,
                           "version": f"repo {repo_version()}"})
        elif item in KNOWN:
            pkg, soname = KNOWN[item]
            if not package_version(pkg) and not (install and try_install(pkg, log)):
                log(f"skipping {item}: package {pkg} is not installed (sudo apt-get install {pkg})")
                continue
            lib = package_file(pkg, soname) if soname else None
            if soname and not lib:
                log(f"skipping {item}: {soname} not found in package {pkg}")
                continue
            result.append({"name": item, "lib": lib, "baseline": True,
                           "version": f"{pkg} {package_version(pkg)}"})
        else:
            log(f"skipping {item}: unknown allocator (use name=/path/to/lib.so)")
    return result


def environment(alloc):
    """Environment for a child process that runs under alloc."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if alloc["lib"]:
        env["LD_PRELOAD"] = alloc["lib"]
    return env
