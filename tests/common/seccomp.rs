//! A seccomp filter for a child process: one syscall, with some arguments, fails with
//! a chosen errno, as a locked-down container or a kernel without a feature has it.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// A syscall a seccomp filter fails with `errno` when every `(argument, mask, value)`
/// holds: `args[argument] & mask == value` (the low 32 bits).
pub struct Deny {
    pub syscall: i64,
    pub args: &'static [(u32, u32, u32)],
    pub errno: i32,
}

/// Installs a seccomp filter in the child before it execs: `deny` fails, everything else
/// is allowed.
pub fn seccomp(command: &mut Command, deny: Deny) -> &mut Command {
    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let load = |offset: u32| op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, offset);
    let jeq = |k: u32, jf: u8| op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, jf, k);
    // struct seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8i (low half first on
    // these little-endian machines). Each test that fails jumps to the final ALLOW.
    let tests = 2 + 3 * deny.args.len() as u8; // instructions after the arch check
    let mut filter = vec![load(4), jeq(ARCH, tests + 1), load(0)];
    filter.push(jeq(deny.syscall as u32, tests - 1));
    for (i, &(arg, mask, value)) in deny.args.iter().enumerate() {
        let left = 3 * (deny.args.len() - i) as u8; // this test's three and the rest
        filter.push(load(16 + 8 * arg));
        filter.push(op(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K, 0, 0, mask));
        filter.push(jeq(value, left - 2));
    }
    filter.push(op(
        libc::BPF_RET | libc::BPF_K,
        0,
        0,
        libc::SECCOMP_RET_ERRNO | deny.errno as u32,
    ));
    filter.push(op(
        libc::BPF_RET | libc::BPF_K,
        0,
        0,
        libc::SECCOMP_RET_ALLOW,
    ));
    // SAFETY: prctl with a program that lives until exec (the closure owns it); no
    // allocation happens in the child.
    unsafe {
        command.pre_exec(move || {
            let program = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &program as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}
