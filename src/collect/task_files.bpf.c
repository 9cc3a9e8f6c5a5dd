// SPDX-License-Identifier: MIT OR GPL-2.0-only
//
// netsql's socket owners from the kernel: a BPF iterator over every open file of every
// process (task_file). It keeps the descriptor tables /proc/<pid>/fd shows, the
// thread-group leaders' (the kernel also visits a thread whose table is its own), so it
// answers as the walk of /proc does. For each socket it writes one 16-byte record, read
// by src/collect/task_files.rs:
//   u64 inode   the socket's inode, the N of /proc/<pid>/fd's socket:[N]
//   s32 pid     the process (thread group) holding it, as the initial pid namespace
//               numbers it
//   s32 fd      the descriptor
// in the machine's byte order. Built by build.rs with clang; the kernel's layouts of the
// structures below are fitted at load time from its BTF (CO-RE), so only the fields read
// are declared.

typedef unsigned int u32;
typedef unsigned long long u64;

#define SEC(name) __attribute__((section(name), used))
#define CO_RE __attribute__((preserve_access_index))

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
} CO_RE;

struct super_block {
	unsigned long s_magic;
} CO_RE;

struct inode {
	unsigned short i_mode;
	unsigned long i_ino;
	struct super_block *i_sb;
} CO_RE;

struct file {
	struct inode *f_inode;
} CO_RE;

struct task_struct {
	int pid;
	int tgid;
} CO_RE;

struct bpf_iter__task_file {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	u32 fd;
	struct file *file;
} CO_RE;

// The helper's number in the kernel's bpf_func_id (include/uapi/linux/bpf.h).
static long (*bpf_seq_write)(struct seq_file *m, const void *data, u32 len) = (void *)127;

#define S_IFMT 0170000
#define S_IFSOCK 0140000
// sockfs's (include/uapi/linux/magic.h). A socket file on disk is S_IFSOCK too, and a
// descriptor opened on it with O_PATH has that file's inode, not a socket's: /proc shows
// such a descriptor as the file's path, and the walk skips it.
#define SOCKFS_MAGIC 0x534F434B

struct owner {
	u64 inode;
	int pid;
	int fd;
};

SEC("iter/task_file")
int sockets(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;

	// Called once more at the end with neither.
	if (!task || !file || task->pid != task->tgid)
		return 0;
	struct inode *inode = file->f_inode;
	if (!inode || (inode->i_mode & S_IFMT) != S_IFSOCK || !inode->i_sb ||
	    inode->i_sb->s_magic != SOCKFS_MAGIC)
		return 0;
	struct owner owner = { inode->i_ino, task->tgid, (int)ctx->fd };
	bpf_seq_write(ctx->meta->seq, &owner, sizeof(owner));
	return 0;
}

// bpf_seq_write is offered to GPL-compatible programs only.
char LICENSE[] SEC("license") = "Dual MIT/GPL";
