//! The `bottle` command: parse arguments, run the library, map the outcome to an exit code.
// Evaluation allocates many small objects; mimalloc is markedly faster at that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    bottle::cli::main()
}
