//! The `bottle` command: parse arguments, run the library, map the outcome to an exit code.
// Evaluation allocates many small objects; mimalloc is markedly faster at that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // A git gate's mirror runs this executable as its pre-receive hook.
    if bottle::sidecar::git_gate::hook::is_hook_invocation() {
        return std::process::ExitCode::from(bottle::sidecar::git_gate::hook::main() as u8);
    }
    bottle::cli::main()
}
