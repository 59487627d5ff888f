// Migrations are embedded at compile time (sqlx::migrate!); rebuild when
// one is added, not only when an existing file changes.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
