//! Parse throughput on a large generated recipe: `cargo bench --bench parse`.
//! Reports MB/s for pest parsing plus AST building, and for scope resolution.

use bottle::syntax::{parse, scope, FileId};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// A recipe shaped like a big fleet: many bottles with strings, lists,
/// nested sets, numbers and Booleans.
pub fn generated_recipe(services: usize) -> String {
    let mut s = String::from("let fleet = {\n");
    for i in 0..services {
        s.push_str(&format!(
            "  svc{i} = {{ name = \"service-{i}\"; cpus = {}; memory = {}; tags = [ \"a\" \"b\" \"c{i}\" ]; \
             env = {{ PATH = \"/usr/bin:/bin\"; HOME = \"/home/u{i}\"; }}; enable = {}; ratio = {}.5; }};\n",
            i % 8,
            512 + i,
            i % 2 == 0,
            i % 7
        ));
    }
    s.push_str("}; in builtins.attrNames fleet\n");
    s
}

fn bench_parse(c: &mut Criterion) {
    let text = generated_recipe(20_000);
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(10);
    group.bench_function("pest+ast", |b| {
        b.iter(|| parse(FileId(0), &text).expect("generated recipe parses"))
    });
    let expr = parse(FileId(0), &text).expect("generated recipe parses");
    group.bench_function("scope", |b| {
        b.iter(|| scope::resolve(&expr, &["builtins", "true", "false", "null"]).expect("resolves"))
    });
    group.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
