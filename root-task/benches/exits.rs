//! Exits per second through the bundled guest, per transport (criterion reports the
//! throughput in elements = exits per second). The in-process figure is the baseline.
//!
//! Each iteration is a whole run of the looped bundled guest: boot requests, then about 50
//! exits per round; with processes, also starting both components.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use root_task::host::script::looped_hello;
use root_task::host::{RunOptions, Transport, run};

fn exits(c: &mut Criterion) {
    let rounds = 200;
    let script = looped_hello(rounds);
    let exits = script.steps.len() as u64;
    let mut group = c.benchmark_group("exits");
    group.sample_size(10);
    group.throughput(Throughput::Elements(exits));
    for transport in Transport::ALL {
        let options = RunOptions {
            component_exe: Some(env!("CARGO_BIN_EXE_vmm").into()),
            ..RunOptions::quiet(script.clone(), transport)
        };
        group.bench_with_input(
            BenchmarkId::new("transport", transport.name()),
            &options,
            |b, options| {
                b.iter(|| {
                    let report = run(options).expect("run");
                    assert!(report.guest_satisfied(), "{:?}", report.differences);
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, exits);
criterion_main!(benches);
