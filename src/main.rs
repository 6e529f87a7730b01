//! The `bottle` command: parse arguments, run the library, map the outcome to an exit code.
#[global_allocator]
static ALLOCATOR: bottle::allocator::Mimalloc = bottle::allocator::Mimalloc;

fn main() -> std::process::ExitCode {
    // A git gate's mirror runs this executable as its pre-receive hook.
    if bottle::sidecar::git_gate::hook::is_hook_invocation() {
        return std::process::ExitCode::from(bottle::sidecar::git_gate::hook::main() as u8);
    }
    bottle::cli::main()
}
