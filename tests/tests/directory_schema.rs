use deadbolt_tests::slapd::*;

#[test]
fn smoke() {
    let t = std::time::Instant::now();
    let d = Directory::start();
    eprintln!("started in {:?}", t.elapsed());
    let alice = d.add_employee("alice", "pw-alice-1", None);
    let e = d.entry(&alice, &["*", "+"]).unwrap();
    eprintln!("{e:#?}");
    eprintln!("{}", d.log());
}
