fn main() {
    println!("vrrpd");
}
