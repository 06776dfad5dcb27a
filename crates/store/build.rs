// sqlx::migrate! embeds the migrations at compile time; make cargo rebuild this crate when a
// migration is added or changed (it does not watch the directory by itself).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
