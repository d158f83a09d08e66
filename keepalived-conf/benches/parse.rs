//! Parse time of a generated 10,000-line keepalived.conf (preprocessor → lexer → tree →
//! model), printed as one JSON line: `cargo bench -p keepalived-conf --bench parse`.

use std::path::Path;
use std::time::{Duration, Instant};

/// A config of `instances` vrrp_instances (20 lines each), plus global_defs and a virtual
/// server with checkers, padded to exactly `lines` lines with comments.
fn generate(lines: usize) -> String {
    let mut s = String::from("global_defs {\n  router_id bench\n  vrrp_garp_master_delay 2\n}\n");
    s += "virtual_server 192.0.2.200 80 {\n  delay_loop 6\n  lb_algo wrr\n  lb_kind DR\n";
    s += "  real_server 198.51.100.1 80 {\n    weight 2\n    HTTP_GET {\n      url {\n        path /health\n        status_code 200\n      }\n      connect_timeout 3\n    }\n  }\n}\n";
    let mut n = 0;
    while s.lines().count() + 20 <= lines {
        n += 1;
        let (a, b) = (n / 250, n % 250 + 1);
        s += &format!(
            "vrrp_instance VI_{n} {{\n  state BACKUP\n  interface eth{}\n  virtual_router_id {}\n  priority {}\n  advert_int 1\n  nopreempt\n  authentication {{\n    auth_type PASS\n    auth_pass pw{n}\n  }}\n  virtual_ipaddress {{\n    10.{a}.{b}.1/24 dev eth0\n    10.{a}.{b}.2/24 brd 10.{a}.{b}.255 dev eth0 label eth0:{n}\n  }}\n  unicast_peer {{\n    192.0.2.{b}\n  }}\n  garp_master_repeat 3\n}}\n! instance {n}\n",
            n % 4,
            n % 255 + 1,
            n % 254 + 1,
        );
    }
    while s.lines().count() < lines {
        s += "# padding\n";
    }
    s
}

fn main() {
    let text = generate(10_000);
    let lines = text.lines().count();
    let name = Path::new("/nonexistent/bench.conf");
    let (cfg, diags) = keepalived_conf::load_str(&text, name);
    let errors = diags.iter().filter(|d| d.is_error()).count();
    assert_eq!(errors, 0, "generated config must be clean");
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 5 || (start.elapsed() < Duration::from_secs(3) && times.len() < 200) {
        let t = Instant::now();
        let r = keepalived_conf::load_str(&text, name);
        times.push(t.elapsed());
        std::hint::black_box(r);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    println!(
        "{{\"bench\":\"config_parse\",\"lines\":{lines},\"bytes\":{},\"instances\":{},\"iterations\":{},\"min_ms\":{:.3},\"median_ms\":{:.3},\"mean_ms\":{:.3}}}",
        text.len(),
        cfg.instances.len(),
        times.len(),
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(mean),
    );
}
