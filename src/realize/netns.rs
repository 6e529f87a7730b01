//! gvproxy's network namespace: the containment at the core of bottle.
//!
//! gvproxy NATs the guest's connections to whatever its own network stack can
//! reach, so it runs in a namespace of its own holding only `lo`. Before gvproxy
//! is exec'd, the child process enters new network and mount namespaces (and,
//! without root, a user namespace first), brings `lo` up, opens a listener on
//! 127.0.0.1 for each sidecar port, and hands those listeners back to `bottle`
//! over a socket pair. So the only open ports gvproxy can reach are bottle's,
//! each relayed to its sidecar's Unix socket (see `relay`). In the mount
//! namespace gvproxy sees a hosts file and resolv.conf of bottle's making, so
//! its DNS cannot answer from the host's `/etc/hosts` or forward to the host's
//! resolver. Nothing here is named or mounted on the host: the namespaces
//! vanish with gvproxy.
use std::ffi::CString;
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use tokio::process::Command;

/// The parent's end of the channel the listeners come back on.
pub struct Pending {
    parent: OwnedFd,
    count: usize,
}

/// Arrange for `command` (gvproxy) to start in a namespace of its own that
/// holds only `lo` with listeners on `ports`; `hosts` and `resolv` replace
/// `/etc/hosts` and `/etc/resolv.conf` in its view.
pub fn confine(
    command: &mut Command,
    ports: &[u16],
    hosts: &Path,
    resolv: &Path,
) -> io::Result<Pending> {
    let mut pair = [0; 2];
    // SAFETY: `pair` is a writable array of two ints, as socketpair requires.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair succeeded, so both fds are open and owned by nothing else.
    let (parent, child) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
    let rootless = !nix::unistd::geteuid().is_root();
    // Everything the child needs is prepared here: after fork it only makes syscalls.
    let c = |s: &str| CString::new(s).expect("no NUL in namespace set-up strings");
    let cpath = |p: &Path| {
        CString::new(p.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::other("NUL in a path"))
    };
    let uid_map = c(&format!("{0} {0} 1\n", nix::unistd::geteuid()));
    let gid_map = c(&format!("{0} {0} 1\n", nix::unistd::getegid()));
    let (hosts, resolv) = (cpath(hosts)?, cpath(resolv)?);
    let (etc_hosts, etc_resolv) = (c("/etc/hosts"), c("/etc/resolv.conf"));
    let (proc_setgroups, proc_uid_map, proc_gid_map) = (
        c("/proc/self/setgroups"),
        c("/proc/self/uid_map"),
        c("/proc/self/gid_map"),
    );
    let (root, deny) = (c("/"), c("deny"));
    let count = ports.len();
    let ports: Vec<u16> = ports.to_vec();
    let mut fds: Vec<i32> = vec![-1; ports.len()];
    // SAFETY: CMSG_SPACE only computes a size from its argument.
    let space = unsafe { libc::CMSG_SPACE((4 * ports.len().max(1)) as u32) };
    let mut control = vec![0u8; space as usize];
    let child_fd = child.as_raw_fd();
    // Keep the child's end open in the parent until the spawn is done.
    let child_keep = child;

    // SAFETY: the hook runs in the child between fork and exec, where only
    // async-signal-safe calls are sound: it makes raw syscalls on values
    // prepared before the fork (C strings, the port list, a preallocated
    // buffer) and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            let _ = &child_keep;
            let check = |rc: libc::c_int| {
                if rc < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(rc)
                }
            };
            // Only the errno of a failure here reaches the parent (std passes
            // it back through a pipe); `namespace_error` turns EPERM into advice.
            if rootless {
                check(libc::unshare(libc::CLONE_NEWUSER))?;
                write_proc(&proc_setgroups, deny.as_bytes())?;
                write_proc(&proc_uid_map, uid_map.as_bytes())?;
                write_proc(&proc_gid_map, gid_map.as_bytes())?;
            }
            check(libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWNS))?;
            check(libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                hosts.as_ptr(),
                etc_hosts.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                resolv.as_ptr(),
                etc_resolv.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ))?;
            loopback_up()?;
            for (slot, port) in fds.iter_mut().zip(&ports) {
                *slot = listen_loopback(*port)?;
            }
            send_fds(child_fd, &fds, &mut control)?;
            for fd in &fds {
                libc::close(*fd);
            }
            Ok(())
        });
    }
    Ok(Pending { parent, count })
}

impl Pending {
    /// The listeners, in the order of `ports`, once the child has started.
    pub fn receive(self) -> io::Result<Vec<TcpListener>> {
        if self.count == 0 {
            return Ok(vec![]);
        }
        let mut byte = [0u8; 1];
        // SAFETY: CMSG_SPACE only computes a size from its argument.
        let space = unsafe { libc::CMSG_SPACE((4 * self.count) as u32) };
        let mut control = vec![0u8; space as usize];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        // SAFETY: msghdr is plain data for which all-zero bytes are valid.
        let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.as_mut_ptr().cast();
        message.msg_controllen = control.len();
        // SAFETY: `message` points at `iov` and `control`, which outlive the call.
        let n = unsafe {
            libc::recvmsg(
                self.parent.as_raw_fd(),
                &mut message,
                libc::MSG_CMSG_CLOEXEC,
            )
        };
        if n <= 0 {
            return Err(io::Error::other("gvproxy's namespace sent no listeners"));
        }
        let mut listeners = Vec::new();
        // SAFETY: recvmsg filled `control` with at most one SCM_RIGHTS
        // message whose length the kernel set; each fd in it was just
        // received and is owned by nothing else, so TcpListener may own it.
        unsafe {
            let header = libc::CMSG_FIRSTHDR(&message);
            if !header.is_null() && (*header).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(header) as *const i32;
                let count = ((*header).cmsg_len - libc::CMSG_LEN(0) as usize) / 4;
                for i in 0..count {
                    listeners.push(TcpListener::from_raw_fd(std::ptr::read_unaligned(
                        data.add(i),
                    )));
                }
            }
        }
        if listeners.len() != self.count {
            return Err(io::Error::other(
                "gvproxy's namespace sent the wrong number of listeners",
            ));
        }
        Ok(listeners)
    }
}

/// Write a `/proc/self/*` file in one `write` (what the kernel requires).
///
/// # Safety
/// Raw syscalls only: callable between fork and exec.
unsafe fn write_proc(path: &CString, content: &[u8]) -> io::Result<()> {
    let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = libc::write(fd, content.as_ptr().cast(), content.len());
    libc::close(fd);
    if n != content.len() as isize {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Bring `lo` up in the current network namespace.
///
/// # Safety
/// Raw syscalls only: callable between fork and exec.
unsafe fn loopback_up() -> io::Result<()> {
    let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut request: libc::ifreq = std::mem::zeroed();
    request.ifr_name[0] = b'l' as libc::c_char;
    request.ifr_name[1] = b'o' as libc::c_char;
    let mut rc = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut request);
    if rc == 0 {
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        rc = libc::ioctl(fd, libc::SIOCSIFFLAGS, &request);
    }
    let error = io::Error::last_os_error();
    libc::close(fd);
    if rc != 0 {
        return Err(error);
    }
    Ok(())
}

/// A TCP listener on 127.0.0.1:`port`, as a raw fd.
///
/// # Safety
/// Raw syscalls only: callable between fork and exec.
unsafe fn listen_loopback(port: u16) -> io::Result<i32> {
    let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut address: libc::sockaddr_in = std::mem::zeroed();
    address.sin_family = libc::AF_INET as libc::sa_family_t;
    address.sin_port = port.to_be();
    address.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
    let size = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    if libc::bind(fd, (&address as *const libc::sockaddr_in).cast(), size) != 0
        || libc::listen(fd, 128) != 0
    {
        let error = io::Error::last_os_error();
        libc::close(fd);
        return Err(error);
    }
    Ok(fd)
}

/// Pass `fds` over the Unix socket `socket`, using `control` as the buffer.
///
/// # Safety
/// Raw syscalls only: callable between fork and exec; `control` must hold
/// `CMSG_SPACE` of the fds.
unsafe fn send_fds(socket: i32, fds: &[i32], control: &mut [u8]) -> io::Result<()> {
    if fds.is_empty() {
        return Ok(());
    }
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut message: libc::msghdr = std::mem::zeroed();
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    message.msg_controllen = control.len();
    let header = libc::CMSG_FIRSTHDR(&message);
    (*header).cmsg_level = libc::SOL_SOCKET;
    (*header).cmsg_type = libc::SCM_RIGHTS;
    (*header).cmsg_len = libc::CMSG_LEN((4 * fds.len()) as u32) as usize;
    let data = libc::CMSG_DATA(header) as *mut i32;
    for (i, fd) in fds.iter().enumerate() {
        std::ptr::write_unaligned(data.add(i), *fd);
    }
    if libc::sendmsg(socket, &message, 0) < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
