#!/usr/bin/python3
"""vm.py: boot a Debian kernel (5.10, 6.1, 6.12) in a throw-away qemu VM, run experiments in it.

A batch of portsim-replay experiments per boot (Python 3 stdlib only). Used by tools/kernel-oracle --kernel
and the oracle-vm ctests; measured recipe and pitfalls: ../shared/VM-ORACLE-NOTES.md (issue 13).

usage: tools/oracle/vm.py fetch KERNEL [--update]     download + unpack (cached), print manifest
       tools/oracle/vm.py info KERNEL                  the cached manifest (no network)
       tools/oracle/vm.py run KERNEL BATCH.json [--replay PATH] [--timeout S] [--mem MIB]
                                                       boot, print {"kernel":…, "records":[…]}
KERNEL is 5.10, 6.1 or 6.12 (Debian bullseye, bookworm, trixie, each with -security).

Kernels: a private apt configuration per suite under the cache (own apt.conf, sources.list,
lists, package cache, empty dpkg status; APT_CONFIG points at it, so no host apt.conf.d hook
runs and the host's apt state is never read or written) resolves linux-image-amd64 to its ABI
package, `apt-get download`s it, unpacks boot/vmlinuz-* + boot/config-*, deletes the .deb,
and extracts the ELF vmlinux from the bzImage (xz or zstd payload) for a PVH boot. The exact
package, version and .deb sha256 go to manifest.json. A warm cache needs no network; `fetch
--update` asks the archive again (Debian replaces ABI packages with security updates).
Cache: $PORTSIM_VM_CACHE, default ~/.cache/portsim/vm; flock()ed, so parallel runs are safe.

Boot: initramfs (newc cpio written here) = /init (static portsim-vm-preinit: loads the bridge
and veth modules, which Debian builds as modules, then execs /portsim-replay as PID 1) +
/modules/*.ko + /batch.json;
qemu TCG (KVM only where kvm_intel/kvm_amd is loaded and kvm_pvm is not), -nodefaults, PVH
vmlinux, kernel console on ttyS0 (console.log), records on ttyS1 (data.log), `timeout
--kill-after`. The guest prints @@PORTSIM-KERNEL, one @@PORTSIM line per experiment and
@@PORTSIM-END; a missing end marker is a crash or a timeout (VMError with the console tail).
"""
import argparse
import datetime
import fcntl
import glob
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# Debian suite per kernel branch (main + security; the newest ABI package wins).
SUITES = {'5.10': 'bullseye', '6.1': 'bookworm', '6.12': 'trixie'}
KERNELS = tuple(SUITES)
MIRROR = os.environ.get('PORTSIM_VM_MIRROR', 'http://deb.debian.org/debian')
SECURITY = os.environ.get('PORTSIM_VM_SECURITY_MIRROR', 'http://deb.debian.org/debian-security')
KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg'
# Built in (=y) on all three Debian kernels; the boot path needs every one of them (no modules
# are loaded in the guest). VM-ORACLE-NOTES.md "Built-in pieces".
NEEDED_CONFIG = ('CONFIG_UNIX', 'CONFIG_INET', 'CONFIG_IPV6', 'CONFIG_NET_NS', 'CONFIG_DEVTMPFS',
                 'CONFIG_SERIAL_8250_CONSOLE', 'CONFIG_BLK_DEV_INITRD', 'CONFIG_PVH',
                 'CONFIG_PROC_FS', 'CONFIG_SYSFS')
# Modules the experiments need that Debian builds as modules (=m): the bridge and veth of a
# multi-host plan's topology. Their dependencies come from each module's modinfo; the
# initramfs carries them decompressed and /init (portsim-vm-preinit) loads them in order.
MODULES = ('kernel/net/bridge/bridge.ko', 'kernel/drivers/net/veth.ko')
LAYOUT = 2  # cache layout of a kernel directory (2: + modules/); older ones are fetched again
# Kernel command line: console on the first serial port; the rest shortens a TCG boot (notes §4).
APPEND = ('console=ttyS0 panic=-1 cryptomgr.notests rodata=off mitigations=off i8042.noaux '
          'i8042.nokbd i8042.nopnp tsc=reliable no_timer_check audit=0 nowatchdog')
# Guest RAM. Memory-scaled defaults (tcp_max_tw_buckets, tcp_ehash_entries, udp_hash_entries,
# tcp_mem ...) follow it, so those values are recorded but never compared (notes "Memory-scaled").
DEFAULT_MEM_MIB = 512
MEMORY_SCALED_SYSCTLS = ('net.ipv4.tcp_max_tw_buckets', 'net.ipv4.tcp_ehash_entries',
                         'net.ipv4.tcp_child_ehash_entries', 'net.ipv4.udp_hash_entries',
                         'net.ipv4.udp_child_hash_entries', 'net.ipv4.tcp_mem', 'net.ipv4.udp_mem',
                         'net.ipv4.tcp_max_orphans', 'net.ipv4.tcp_max_syn_backlog')


class VMError(Exception):
    """Cannot fetch, boot or read back (one line; the callers exit 2)."""


def one_line(s):
    return ' '.join(str(s).split())


def cache_dir():
    d = os.environ.get('PORTSIM_VM_CACHE') or os.path.join(os.path.expanduser('~'), '.cache',
                                                           'portsim', 'vm')
    os.makedirs(d, exist_ok=True)
    return d


class Lock:
    """flock() on a file in the cache: one fetcher per kernel, parallel readers wait."""

    def __init__(self, name):
        self.path = os.path.join(cache_dir(), name + '.lock')

    def __enter__(self):
        self.f = open(self.path, 'a')
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *a):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def check_kernel(k):
    if k not in SUITES:
        raise VMError('unknown VM kernel "%s" (known: %s)' % (k, ', '.join(KERNELS)))


# ---------------------------------------------------------------------------------------------
# Private apt
# ---------------------------------------------------------------------------------------------

def _apt_root(suite):
    """Create (once) the private apt tree of a suite; returns (root, environment)."""
    root = os.path.join(cache_dir(), 'apt', suite)
    for d in ('etc/apt.conf.d', 'etc/sources.list.d', 'etc/preferences.d', 'lists/partial',
              'cache/archives/partial', 'state', 'log'):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    with open(os.path.join(root, 'etc', 'sources.list'), 'w') as f:
        f.write('deb [signed-by=%s] %s %s main\n' % (KEYRING, MIRROR, suite))
        f.write('deb [signed-by=%s] %s %s-security main\n' % (KEYRING, SECURITY, suite))
    status = os.path.join(root, 'state', 'status')
    if not os.path.exists(status):
        open(status, 'w').close()
    j = lambda *p: os.path.join(root, *p)  # noqa: E731
    conf = '\n'.join([
        # Read no host configuration: APT_CONFIG is read first, and it redirects the parts
        # directory and the main file, so /etc/apt/apt.conf.d (hooks, proxies) is never read.
        'Dir::Etc::main "%s";' % j('etc', 'apt.conf'),
        'Dir::Etc::parts "%s";' % j('etc', 'apt.conf.d'),
        'Dir::Etc::sourcelist "%s";' % j('etc', 'sources.list'),
        'Dir::Etc::sourceparts "%s";' % j('etc', 'sources.list.d'),
        'Dir::Etc::preferences "%s";' % j('etc', 'preferences'),
        'Dir::Etc::preferencesparts "%s";' % j('etc', 'preferences.d'),
        'Dir::State "%s";' % j('state'),
        'Dir::State::Lists "%s";' % j('lists'),
        'Dir::State::status "%s";' % status,
        'Dir::Cache "%s";' % j('cache'),
        'Dir::Cache::pkgcache "";',  # no 60-80 MB binary caches per suite: built in memory
        'Dir::Cache::srcpkgcache "";',
        'Dir::Log "%s";' % j('log'),
        'APT::Sandbox::User "root";',
        'APT::Architecture "amd64";',
        'APT::Architectures { "amd64"; };',
        'Acquire::Languages "none";',
        'Acquire::GzipIndexes "true";',  # lists stay compressed (~5x smaller cache)
        'Acquire::CompressionTypes::Order:: "gz";',
        'Acquire::Retries "3";',
        # the machine's clock may run ahead of the archive's Valid-Until (as on the host)
        'Acquire::Check-Valid-Until "false";',
        'Acquire::Check-Date "false";',
        'Debug::NoLocking "true";',  # our own flock() serialises; no /var/lib/dpkg lock
        ''])
    with open(j('etc', 'apt.conf'), 'w') as f:
        f.write('')
    with open(j('apt-private.conf'), 'w') as f:
        f.write(conf)
    env = dict(os.environ, APT_CONFIG=j('apt-private.conf'), LC_ALL='C')
    return root, env


def _run(cmd, env=None, cwd=None, what=None):
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        err = (p.stderr.strip() or p.stdout.strip()).splitlines()
        raise VMError('%s failed (rc %d): %s' % (what or cmd[0], p.returncode,
                                                 one_line(err[-1] if err else '?')))
    return p.stdout


def _apt_update(suite, env, root, force):
    stamp = os.path.join(root, 'lists', '.updated')
    fresh = os.path.exists(stamp) and time.time() - os.path.getmtime(stamp) < 24 * 3600
    if fresh and not force:
        return
    _run(['apt-get', '-q', 'update'], env=env, what='apt-get update (private, %s)' % suite)
    with open(stamp, 'w') as f:
        f.write(datetime.datetime.now(datetime.timezone.utc).isoformat() + '\n')


def _show(pkg, env):
    """Fields of the candidate version of pkg in the private lists."""
    out = _run(['apt-cache', 'show', '--no-all-versions', pkg], env=env, what='apt-cache show ' + pkg)
    fields = {}
    for line in out.splitlines():
        m = re.match(r'^([A-Za-z0-9-]+): (.*)$', line)
        if m and m.group(1) not in fields:
            fields[m.group(1)] = m.group(2)
    return fields


def resolve_abi_package(env):
    """linux-image-amd64 (the meta package) -> its ABI package, e.g. linux-image-6.1.0-57-amd64."""
    deps = _show('linux-image-amd64', env).get('Depends', '')
    for d in deps.split(','):
        name = d.strip().split()[0] if d.strip() else ''
        if re.fullmatch(r'linux-image-[0-9][0-9a-z.+~-]*-amd64(-unsigned)?', name):
            return name
    raise VMError('linux-image-amd64 names no ABI package (Depends: %s)' % deps)


def _sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for b in iter(lambda: f.read(1 << 20), b''):
            h.update(b)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# vmlinux from the bzImage
# ---------------------------------------------------------------------------------------------

XZ_MAGIC = b'\xfd7zXZ\x00'
ZSTD_MAGIC = b'\x28\xb5\x2f\xfd'


def extract_vmlinux(bzimage, out):
    """The ELF vmlinux inside a bzImage: the first xz or zstd stream that decompresses to an
    ELF image (what scripts/extract-vmlinux does). PVH boot needs the ELF (its PVH note)."""
    with open(bzimage, 'rb') as f:
        data = f.read()
    cands = []
    for magic, kind in ((XZ_MAGIC, 'xz'), (ZSTD_MAGIC, 'zstd')):
        i = data.find(magic)
        while i >= 0:
            cands.append((i, kind))
            i = data.find(magic, i + 1)
    for off, kind in sorted(cands):
        elf = None
        if kind == 'xz':
            try:
                elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[off:])
            except lzma.LZMAError:
                continue
        else:
            if not shutil.which('zstd'):
                raise VMError('%s has a zstd payload and zstd is not installed '
                              '(tools/install-deps.sh --vm)' % bzimage)
            p = subprocess.run(['zstd', '-dcq'], input=data[off:], capture_output=True)
            elf = p.stdout  # trailing bytes after the frame make zstd complain; the output is whole
        if elf and elf[:4] == b'\x7fELF':
            tmp = out + '.part'
            with open(tmp, 'wb') as f:
                f.write(elf)
            os.replace(tmp, out)
            return kind
    raise VMError('%s: no xz/zstd payload decompresses to an ELF vmlinux' % bzimage)


def _modinfo_depends(data):
    """The depends= entry of a module's .modinfo (NUL-separated key=value strings)."""
    i = data.find(b'\0depends=')
    if i < 0:
        return []
    v = data[i + 9:data.index(b'\0', i + 9)].decode()
    return [x for x in v.split(',') if x]


def _ko_bytes(path):
    with open(path, 'rb') as f:
        data = f.read()
    if path.endswith('.xz'):
        return lzma.decompress(data)
    if path.endswith('.zst'):
        return subprocess.run(['zstd', '-dcq'], input=data, capture_output=True, check=True).stdout
    if path.endswith('.gz'):
        import gzip
        return gzip.decompress(data)
    return data


def copy_modules(ex, release, dest):
    """MODULES and their dependencies (each module's modinfo "depends=", as depmod reads it; the
    package has no modules.dep) into dest, decompressed (.ko.xz / .ko.zst: 5.10 cannot
    decompress modules itself); returns the file names in load order (dependencies first)."""
    found = {}
    for root in (os.path.join(ex, 'lib', 'modules', release), os.path.join(ex, 'usr', 'lib', 'modules', release)):
        for dp, _, fs in os.walk(root):
            for fn in fs:
                m = re.fullmatch(r'(.+)\.ko(\.xz|\.zst|\.gz)?', fn)
                if m:
                    found[m.group(1).replace('-', '_')] = os.path.join(dp, fn)
    order, data = [], {}

    def add(name, chain):
        key = name.replace('-', '_')
        if key in order:
            return
        if key not in found:
            raise VMError('module %s (needed by %s) is not in the package' % (name, ' <- '.join(chain)))
        data[key] = _ko_bytes(found[key])
        for d in _modinfo_depends(data[key]):
            add(d, chain + [name])
        order.append(key)
    for want in MODULES:
        add(os.path.basename(want)[:-3], [])
    os.makedirs(dest, exist_ok=True)
    for key in order:
        with open(os.path.join(dest, key + '.ko'), 'wb') as f:
            f.write(data[key])
    return [key + '.ko' for key in order]


def read_config(path):
    cfg = {}
    with open(path) as f:
        for line in f:
            m = re.match(r'^(CONFIG_[A-Z0-9_]+)=(.*)$', line.strip())
            if m:
                cfg[m.group(1)] = m.group(2)
    return cfg


# ---------------------------------------------------------------------------------------------
# fetch
# ---------------------------------------------------------------------------------------------

def kernel_dir(k):
    return os.path.join(cache_dir(), 'kernels', k)


def manifest(k):
    """The cached manifest of kernel k, or None."""
    p = os.path.join(kernel_dir(k), 'manifest.json')
    try:
        with open(p) as f:
            m = json.load(f)
    except (OSError, ValueError):
        return None
    if m.get('layout') != LAYOUT or not all(
            os.path.exists(os.path.join(kernel_dir(k), m.get(x, '-'))) for x in ('vmlinux', 'config')):
        return None
    return m


def fetch(k, update=False, log=None):
    """Make sure kernel k is in the cache; returns its manifest. Network only when the cache
    has no kernel yet, or with update=True."""
    check_kernel(k)
    with Lock('kernel-' + k):
        m = manifest(k)
        if m and not update:
            return m
        for tool in ('apt-get', 'apt-cache', 'dpkg-deb', 'tar'):
            if not shutil.which(tool):
                raise VMError('%s not found (a Debian host is needed to fetch kernels)' % tool)
        suite = SUITES[k]
        t0 = time.monotonic()
        if log:
            log('fetching Debian %s kernel (%s + %s-security, private apt in %s)' % (
                k, suite, suite, os.path.join(cache_dir(), 'apt', suite)))
        root, env = _apt_root(suite)
        _apt_update(suite, env, root, update)
        pkg = resolve_abi_package(env)
        info = _show(pkg, env)
        version = info.get('Version')
        if m and m['package'] == pkg and m['version'] == version:
            m['checked_utc'] = _now()
            _write_manifest(k, m)
            return m
        kd = kernel_dir(k)
        staging = tempfile.mkdtemp(prefix='fetch-', dir=cache_dir())
        try:
            _run(['apt-get', '-q', 'download', pkg], env=env, cwd=staging,
                 what='apt-get download ' + pkg)
            debs = glob.glob(os.path.join(staging, '*.deb'))
            if len(debs) != 1:
                raise VMError('apt-get download %s left %d .deb files' % (pkg, len(debs)))
            deb = debs[0]
            sha = _sha256(deb)
            if info.get('SHA256') and info['SHA256'] != sha:
                raise VMError('%s: sha256 %s differs from the archive\'s %s' % (deb, sha, info['SHA256']))
            size = os.path.getsize(deb)
            ex = os.path.join(staging, 'x')
            os.mkdir(ex)
            p1 = subprocess.Popen(['dpkg-deb', '--fsys-tarfile', deb], stdout=subprocess.PIPE)
            pats = ['./boot/vmlinuz-*', './boot/config-*'] + ['*/' + mod + '*' for mod in MODULES] + \
                ['*/kernel/net/802/*', '*/kernel/net/llc/*']  # bridge's dependencies stp, llc
            p2 = subprocess.run(['tar', '-x', '-C', ex, '--wildcards'] + pats, stdin=p1.stdout,
                                capture_output=True, text=True)
            p1.stdout.close()
            p1.wait()
            if p1.returncode != 0 or p2.returncode != 0:
                raise VMError('unpacking %s failed: %s' % (deb, one_line(p2.stderr)[-200:]))
            os.unlink(deb)  # ~60 MB kept per kernel instead of 57-108 MB more
            vmlinuz = glob.glob(os.path.join(ex, 'boot', 'vmlinuz-*'))
            config = glob.glob(os.path.join(ex, 'boot', 'config-*'))
            if len(vmlinuz) != 1 or len(config) != 1:
                raise VMError('%s: expected one boot/vmlinuz-* and one boot/config-*' % pkg)
            release = os.path.basename(vmlinuz[0])[len('vmlinuz-'):]
            cfg = read_config(config[0])
            missing = [c for c in NEEDED_CONFIG if cfg.get(c) != 'y']
            if missing:
                raise VMError('%s lacks built-in %s (=y needed: no modules are loaded in the guest)'
                              % (pkg, ', '.join(missing)))
            newdir = kd + '.new'
            shutil.rmtree(newdir, ignore_errors=True)
            os.makedirs(newdir)
            os.replace(vmlinuz[0], os.path.join(newdir, 'vmlinuz-' + release))
            os.replace(config[0], os.path.join(newdir, 'config-' + release))
            kind = extract_vmlinux(os.path.join(newdir, 'vmlinuz-' + release),
                                   os.path.join(newdir, 'vmlinux-' + release))
            os.unlink(os.path.join(newdir, 'vmlinuz-' + release))  # the ELF is what boots
            mods = copy_modules(ex, release, os.path.join(newdir, 'modules'))
            m = {'kernel': k, 'suite': suite, 'package': pkg, 'version': version,
                 'deb_sha256': sha, 'deb_size': size, 'release': release,
                 'source_version': info.get('Source', ''),
                 'hz': int(cfg.get('CONFIG_HZ', '0') or 0), 'payload': kind,
                 'layout': LAYOUT, 'modules': mods, 'vmlinux': 'vmlinux-' + release,
                 'config': 'config-' + release, 'fetched_utc': _now(), 'checked_utc': _now(),
                 'sources': [MIRROR + ' ' + suite, SECURITY + ' ' + suite + '-security']}
            with open(os.path.join(newdir, 'manifest.json'), 'w') as f:
                json.dump(m, f, indent=1)
                f.write('\n')
            old = kd + '.old'
            shutil.rmtree(old, ignore_errors=True)
            if os.path.exists(kd):
                os.replace(kd, old)
            os.replace(newdir, kd)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if log:
            log('%s %s (%s) cached in %.0f s' % (pkg, version, release, time.monotonic() - t0))
        return m


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def _write_manifest(k, m):
    p = os.path.join(kernel_dir(k), 'manifest.json')
    with open(p + '.part', 'w') as f:
        json.dump(m, f, indent=1)
        f.write('\n')
    os.replace(p + '.part', p)


def package_line(m):
    """How every result names the kernel: 'linux-image-6.1.0-57-amd64 6.1.192-3 (uname -r …)'."""
    return '%s %s (Debian %s; uname -r %s)' % (m['package'], m['version'], m['suite'], m['release'])


# ---------------------------------------------------------------------------------------------
# initramfs
# ---------------------------------------------------------------------------------------------

def _cpio_entry(name, mode, data=b'', ino=1):
    nb = name.encode() + b'\0'
    hdr = '070701' + ''.join('%08X' % v for v in (
        ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nb), 0))
    out = hdr.encode() + nb
    out += b'\0' * (-len(out) % 4)
    out += data
    out += b'\0' * (-len(out) % 4)
    return out


def write_initramfs(path, files):
    """newc cpio (uncompressed) of [(name, mode, bytes)] + the trailer. The kernel unpacks it
    into rootfs; no device nodes (the guest mounts devtmpfs itself)."""
    out = b''
    for ino, (name, mode, data) in enumerate(files, start=1):
        out += _cpio_entry(name, mode, data, ino)
    out += _cpio_entry('TRAILER!!!', 0, b'', 0)
    out += b'\0' * (-len(out) % 512)
    with open(path, 'wb') as f:
        f.write(out)


# ---------------------------------------------------------------------------------------------
# qemu
# ---------------------------------------------------------------------------------------------

def qemu_binary():
    q = shutil.which('qemu-system-x86_64')
    if not q:
        raise VMError('qemu-system-x86_64 not found: install it with tools/install-deps.sh --vm '
                      '(qemu-system-x86, no recommends)')
    return q


def use_kvm():
    """KVM only on a normal developer box: kvm_intel or kvm_amd loaded and no kvm_pvm (which runs
    only PVM-aware guests: stock kernels fail or crawl, notes "Why not KVM here")."""
    mods = set(os.listdir('/sys/module')) if os.path.isdir('/sys/module') else set()
    if os.environ.get('PORTSIM_VM_ACCEL') == 'tcg':
        return False
    return bool(mods & {'kvm_intel', 'kvm_amd'}) and 'kvm_pvm' not in mods and \
        os.access('/dev/kvm', os.R_OK | os.W_OK)


def find_preinit(replay):
    """portsim-vm-preinit next to portsim-replay (both in build/)."""
    p = os.path.join(os.path.dirname(os.path.abspath(replay)), 'portsim-vm-preinit')
    return p if os.access(p, os.X_OK) else None


def default_replay():
    for p in (os.path.join(ROOT, 'build', 'portsim-replay'),
              os.path.join(ROOT, 'build', 'tools', 'oracle', 'replay', 'portsim-replay')):
        if os.access(p, os.X_OK):
            return p
    return None


def _is_static(path):
    with open(path, 'rb') as f:
        head = f.read(4096)
    if head[:4] != b'\x7fELF':
        return False
    p = subprocess.run(['file', '-b', path], capture_output=True, text=True) if shutil.which('file') else None
    if p and p.returncode == 0:
        return 'statically linked' in p.stdout or 'static-pie' in p.stdout
    return b'/lib64/ld-linux' not in head and b'/lib/ld-linux' not in head


def parse_records(text):
    """@@PORTSIM lines of data.log -> (kernel dict or None, [records], end dict or None, bad,
    sysctl defaults dict or None)."""
    kern, recs, end, bad, sysctls = None, [], None, [], None
    for line in text.split('\n'):
        line = line.rstrip('\r').lstrip('\0')
        if not line.startswith('@@PORTSIM'):
            continue
        tag, _, body = line.partition(' ')
        try:
            obj = json.loads(body)
        except ValueError:
            bad.append(line[:120])
            continue
        if tag == '@@PORTSIM-KERNEL':
            kern = obj
        elif tag == '@@PORTSIM-SYSCTLS':  # portsim-vm-preinit: a fresh netns's defaults
            sysctls = obj
        elif tag == '@@PORTSIM-END':
            end = obj
        elif tag == '@@PORTSIM':
            recs.append(obj)
        else:
            bad.append(line[:120])
    return kern, recs, end, bad, sysctls


def estimate_timeout(experiments):
    """60 s + 2 × the batch estimate (notes: boot 2-10 s, 20-200 ms per experiment, + the
    scenario's own waits); experiments may carry "est_s"."""
    est = 10 + sum(0.3 + float(e.get('est_s', 0)) for e in experiments)
    return int(60 + 2 * est)


def run_batch(k, experiments, replay=None, timeout=None, mem=DEFAULT_MEM_MIB, keep=None, log=None,
              update=False):
    """Boot kernel k once, run `experiments` ([{"id", "plan", (est_s)}]) with `replay` as /init.
    Returns {"manifest", "guest" (uname of the guest), "records" ({id: record}), "boot_s",
    "accel", "mem_mib", "sysctls" (the defaults of a fresh network namespace: name -> value or
    None when the file does not exist)}. Raises VMError (one line) when anything fails."""
    check_kernel(k)
    q = qemu_binary()
    if not shutil.which('timeout'):
        raise VMError('timeout (coreutils) not found')
    replay = replay or default_replay()
    if not replay or not os.access(replay, os.X_OK):
        raise VMError('portsim-replay not found: build it (cmake --build build --target '
                      'portsim-replay) or pass --replay PATH')
    preinit = find_preinit(replay)
    if not preinit:
        raise VMError('portsim-vm-preinit not found next to %s: build it (cmake --build build '
                      '--target portsim-vm-preinit)' % replay)
    for exe in (replay, preinit):
        if not _is_static(exe):
            raise VMError('%s is not a static executable (the initramfs has no libc)' % exe)
    m = fetch(k, update=update, log=log)
    kd = kernel_dir(k)
    ids = [e['id'] for e in experiments]
    if len(set(ids)) != len(ids):
        raise VMError('experiment ids must be unique')
    batch = {'experiments': [{'id': e['id'], 'plan': e['plan']} for e in experiments]}
    runs = os.path.join(cache_dir(), 'runs')
    os.makedirs(runs, exist_ok=True)
    rd = tempfile.mkdtemp(prefix='%s-' % k, dir=runs)
    try:
        def read(p):
            with open(p, 'rb') as f:
                return f.read()
        files = [('init', 0o100755, read(preinit)), ('portsim-replay', 0o100755, read(replay)),
                 ('modules', 0o040755, b'')]
        files += [('modules/' + n, 0o100644, read(os.path.join(kd, 'modules', n))) for n in m['modules']]
        files += [('modules.order', 0o100644, ''.join('/modules/%s\n' % n for n in m['modules']).encode()),
                  ('batch.json', 0o100644, json.dumps(batch, separators=(',', ':')).encode())]
        write_initramfs(os.path.join(rd, 'initrd.cpio'), files)
        con, dat = os.path.join(rd, 'console.log'), os.path.join(rd, 'data.log')
        limit = int(timeout or estimate_timeout(experiments))
        kvm = use_kvm()
        cmd = ['timeout', '--kill-after=5', str(limit), q,
               '-nodefaults', '-no-user-config', '-nographic', '-no-reboot',
               '-M', 'pc', '-m', str(mem), '-smp', '1',
               '-kernel', os.path.join(kd, m['vmlinux']),
               '-initrd', os.path.join(rd, 'initrd.cpio'),
               '-append', APPEND,
               '-serial', 'file:' + con, '-serial', 'file:' + dat]
        if kvm:
            cmd += ['-enable-kvm', '-cpu', 'host']
        else:
            cmd += ['-accel', 'tcg', '-cpu', 'qemu64']
        t0 = time.monotonic()
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        boot_s = time.monotonic() - t0
        try:
            with open(dat, 'rb') as f:
                text = f.read().decode('utf-8', 'replace')
        except OSError:
            text = ''
        kern, recs, end, bad, sysctls = parse_records(text)
        if end is None or p.returncode not in (0,):
            what = 'timed out after %d s' % limit if p.returncode in (124, 137) else \
                'qemu exited with rc %d' % p.returncode if p.returncode != 0 else 'no end marker'
            raise VMError('%s VM (%s): %s; %d of %d records; qemu: %s; console tail: %s' % (
                k, m['package'], what, len(recs), len(experiments),
                one_line(p.stderr)[-200:] or '-', _console_tail(con)))
        if bad:
            raise VMError('%s VM: %d malformed record line(s), first: %s' % (k, len(bad), bad[0]))
        if end.get('experiments') != len(experiments) or len(recs) != len(experiments):
            raise VMError('%s VM: %d records for %d experiments (end marker says %s)' % (
                k, len(recs), len(experiments), end.get('experiments')))
        by_id = {r.get('id'): r for r in recs}
        if set(by_id) != set(ids):
            raise VMError('%s VM: record ids differ from the batch' % k)
        if kern is None:
            raise VMError('%s VM: no @@PORTSIM-KERNEL line' % k)
        if kern.get('release') != m['release']:
            raise VMError('%s VM: guest says uname -r %s, the package is %s' % (
                k, kern.get('release'), m['release']))
        if keep:
            shutil.copy(con, keep + '.console.log')
        return {'manifest': m, 'guest': kern, 'records': by_id, 'boot_s': round(boot_s, 2),
                'accel': 'kvm' if kvm else 'tcg', 'mem_mib': mem, 'sysctls': sysctls}
    finally:
        shutil.rmtree(rd, ignore_errors=True)


def _console_tail(path, n=4):
    """The last n console lines, after the kernel's panic line if there is one."""
    try:
        with open(path, 'rb') as f:
            lines = [ln.strip() for ln in f.read().decode('utf-8', 'replace').replace('\r', '').split('\n')
                     if ln.strip()]
    except OSError:
        return '(no console output)'
    panic = [ln for ln in lines if 'Kernel panic' in ln][:1]
    return ' | '.join(panic + [ln for ln in lines[-n:] if ln not in panic]) or '(no console output)'


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(prog='tools/oracle/vm.py', description=__doc__.split('\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = ap.add_subparsers(dest='cmd', required=True)
    f = sub.add_parser('fetch', help='download + unpack a kernel (cached)')
    f.add_argument('kernel')
    f.add_argument('--update', action='store_true', help='ask the archive for a newer package')
    i = sub.add_parser('info', help='print the cached manifest (no network)')
    i.add_argument('kernel')
    r = sub.add_parser('run', help='boot and run a batch')
    r.add_argument('kernel')
    r.add_argument('batch', help='{"experiments":[{"id":…,"plan":{…}},…]}')
    r.add_argument('--replay', help='static portsim-replay (default build/portsim-replay)')
    r.add_argument('--timeout', type=int, help='seconds (default 60 + 2 x estimate)')
    r.add_argument('--mem', type=int, default=DEFAULT_MEM_MIB, help='guest MiB (default %d)' % DEFAULT_MEM_MIB)
    a = ap.parse_args(argv)
    log = lambda s: print('vm.py: ' + s, file=sys.stderr)  # noqa: E731
    try:
        if a.cmd == 'fetch':
            print(json.dumps(fetch(a.kernel, update=a.update, log=log), indent=1))
        elif a.cmd == 'info':
            check_kernel(a.kernel)
            m = manifest(a.kernel)
            if not m:
                raise VMError('kernel %s is not cached (tools/oracle/vm.py fetch %s)' % (a.kernel, a.kernel))
            print(json.dumps(m, indent=1))
        else:
            try:
                with open(a.batch) as fh:
                    batch = json.load(fh)
            except OSError as ex:
                raise VMError('%s: cannot read: %s' % (a.batch, ex.strerror))
            except ValueError as ex:
                raise VMError('%s: invalid JSON: %s' % (a.batch, ex))
            exps = batch.get('experiments') if isinstance(batch, dict) else None
            if not isinstance(exps, list) or not all(isinstance(e, dict) and 'id' in e and 'plan' in e
                                                     for e in exps):
                raise VMError('%s: $.experiments: expected a list of {"id", "plan"}' % a.batch)
            out = run_batch(a.kernel, exps, replay=a.replay, timeout=a.timeout, mem=a.mem, log=log)
            print(json.dumps(out, indent=1))
    except VMError as ex:
        print('vm.py: ' + one_line(ex), file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
