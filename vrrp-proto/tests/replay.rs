//! Replay tests of the instance core: each `tests/replay/*.replay` file lists instances, the
//! events they get over time and the effects they must produce, in order. The runner feeds the
//! events to a [`Node`] (timers fire at their exact instants between events) and compares what
//! comes out, line by line. `BLESS=1 cargo test -p vrrp-proto --test replay` rewrites the
//! expected lines from what the code does now: review the diff before committing it.
//!
//! ```text
//! # comment
//! instance VI_1 vrid=51 prio=100 int=10 addr=192.0.2.10 vips=192.0.2.100 [preempt=false]
//!          [preempt_delay=MS] [track_primary=false] [fifo_reload] [skip_check]
//!          [lower_prio_no_advert] [no_answer] [garp=REPEAT/DELAY_MS]
//! group G VI_1 VI_2
//! @0 VI_1 link up|down
//! @0 VI_1 track script:chk|file:f|process:p|vs:name|if:3 fault|N
//! @0 VI_1 start [delay=MS] [resume=master|backup]
//! @100 VI_1 advert src=192.0.2.20 prio=200 [int=CS] [vips=A,B]
//! @100 VI_1 lost|shutdown|removed|reloaded
//! @100 VI_1 replace <instance options>        (a reload changed it; start it again after)
//! @100 groups [reload] G=VI_1,VI_2 ...         (the sync groups, after a reload)
//! @500 run                                     (advance the clock)
//! > @360.9375 VI_1 entered BACKUP->MASTER      (an expected effect and when it happened)
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use vrrp_proto::announce::ScheduleConfig;
use vrrp_proto::fsm::{self, State};
use vrrp_proto::instance::{self, Effect, Event, Instance, Note, NotifyEvent};
use vrrp_proto::node::{GroupEffect, GroupId, Id, Node, Output};
use vrrp_proto::packet::{Advert, Auth, Version};
use vrrp_proto::sync::Cmd;
use vrrp_proto::track::{Contribution, TrackKey};

/// Milliseconds with up to nine decimals (`360.9375`) to a duration.
fn parse_ms(s: &str) -> Duration {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let ms: u64 = int.parse().unwrap_or_else(|_| panic!("bad time {s:?}"));
    let mut ns = 0u64;
    let mut scale = 100_000u64;
    for c in frac.chars() {
        ns += u64::from(c.to_digit(10).expect("digit")) * scale;
        scale /= 10;
    }
    Duration::from_millis(ms) + Duration::from_nanos(ns)
}

fn fmt_ms(d: Duration) -> String {
    let ns = d.as_nanos();
    let (ms, frac) = (ns / 1_000_000, ns % 1_000_000);
    if frac == 0 {
        ms.to_string()
    } else {
        format!("{ms}.{}", format!("{frac:06}").trim_end_matches('0'))
    }
}

fn state(s: State) -> &'static str {
    match s {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
    }
}

/// A state as notify scripts and mail name it (INIT is STOP there).
fn news(s: State) -> &'static str {
    match s {
        State::Initialize => "STOP",
        s => state(s),
    }
}

fn addrs(list: &str) -> Vec<IpAddr> {
    list.split(',')
        .filter(|a| !a.is_empty())
        .map(|a| a.parse().expect("address"))
        .collect()
}

fn opts(words: &[&str]) -> BTreeMap<String, String> {
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (w.to_string(), String::new()),
        })
        .collect()
}

fn config(words: &[&str]) -> instance::Config {
    let o = opts(words);
    let get = |k: &str| o.get(k).map(String::as_str);
    let num = |k: &str, d: u64| get(k).map_or(d, |v| v.parse().expect("number"));
    let mut announce = ScheduleConfig::default();
    if let Some(g) = get("garp") {
        let (r, d) = g.split_once('/').expect("garp=REPEAT/DELAY_MS");
        announce.master_repeat = r.parse().expect("repeat");
        announce.lower_prio_repeat = announce.master_repeat;
        announce.master_delay = parse_ms(d);
        announce.lower_prio_delay = announce.master_delay;
    }
    instance::Config {
        vrrp: fsm::Config {
            vrid: num("vrid", 51) as u8,
            version: if get("version") == Some("2") {
                Version::V2
            } else {
                Version::V3
            },
            priority: num("prio", 100) as u8,
            advert_int: num("int", 10) as u16,
            preempt: get("preempt") != Some("false"),
            preempt_delay: Duration::from_millis(num("preempt_delay", 0)),
            start_master: false,
            primary_addr: get("addr").unwrap_or("192.0.2.10").parse().expect("addr"),
            vips: addrs(get("vips").unwrap_or("192.0.2.100")),
            auth: Auth::None,
            lower_prio_no_advert: o.contains_key("lower_prio_no_advert"),
            answer_before_stepping_down: !o.contains_key("no_answer"),
            down_timer_adverts: num("down_timer_adverts", 3) as u8,
            skip_check_adv_addr: o.contains_key("skip_check"),
        },
        announce,
        ifindex: num("ifindex", 2) as u32,
        track_primary: get("track_primary") != Some("false"),
        fifo_states_on_reload: o.contains_key("fifo_reload"),
    }
}

struct Replay {
    node: Node,
    now: Duration,
    names: BTreeMap<String, Id>,
    groups: Vec<String>,
    out: Vec<String>,
}

impl Replay {
    fn name(&self, id: Id) -> String {
        self.names
            .iter()
            .find(|(_, i)| **i == id)
            .map_or_else(|| format!("#{}", id.index()), |(n, _)| n.clone())
    }

    fn id(&self, name: &str) -> Id {
        *self
            .names
            .get(name)
            .unwrap_or_else(|| panic!("no instance {name}"))
    }

    fn record(&mut self, outs: Vec<Output>) {
        for o in outs {
            let line = match o {
                Output::Instance(id, e) => format!("{} {}", self.name(id), effect(&e)),
                Output::Group(GroupId(g), e) => {
                    let gname = self.groups.get(g).cloned().unwrap_or_default();
                    match e {
                        GroupEffect::Entered(s) => format!("group {gname} entered {}", state(s)),
                        GroupEffect::Reloaded(s) => format!("group {gname} fifo-line {}", state(s)),
                        GroupEffect::Moved { by, target, cmd } => format!(
                            "group {gname} {} moves {} to {}",
                            self.name(by),
                            self.name(target),
                            if cmd == Cmd::Master {
                                "MASTER"
                            } else {
                                "BACKUP"
                            }
                        ),
                    }
                }
            };
            self.out.push(format!("> @{} {line}", fmt_ms(self.now)));
        }
    }

    /// Fires every deadline up to `t`, then sets the clock to `t`.
    fn advance(&mut self, t: Duration) {
        while let Some(d) = self.node.poll_timeout().filter(|d| *d <= t) {
            self.now = self.now.max(d);
            let mut outs = Vec::new();
            self.node.handle_timeout(self.now, &mut outs);
            self.record(outs);
        }
        self.now = self.now.max(t);
    }

    fn set_groups(&mut self, specs: &[&str], reload: bool) {
        let mut groups = Vec::new();
        self.groups.clear();
        for spec in specs {
            let (g, members) = spec.split_once('=').expect("G=A,B");
            self.groups.push(g.to_string());
            groups.push(members.split(',').map(|m| self.id(m)).collect::<Vec<_>>());
        }
        let mut outs = Vec::new();
        self.node
            .set_groups(self.now, &groups, reload, true, &mut outs);
        self.record(outs);
    }

    fn event(&mut self, name: &str, words: &[&str]) {
        let id = self.id(name);
        let ev = match words {
            ["link", s] => Event::Link(*s == "up"),
            ["track", key, value] => {
                let (kind, n) = key.split_once(':').expect("kind:name");
                let key = match kind {
                    "script" => TrackKey::Script(n.into()),
                    "file" => TrackKey::File(n.into()),
                    "process" => TrackKey::Process(n.into()),
                    "vs" => TrackKey::VirtualServer(n.into()),
                    "if" => TrackKey::Interface(n.parse().expect("ifindex")),
                    _ => panic!("tracker kind {kind}"),
                };
                let c = match *value {
                    "fault" => Contribution::Fault,
                    v => Contribution::Delta(v.parse().expect("delta")),
                };
                Event::Track(key, c)
            }
            ["start", rest @ ..] => {
                let o = opts(rest);
                Event::Start {
                    delay: o.get("delay").map_or(Duration::ZERO, |d| parse_ms(d)),
                    resume: o.get("resume").map(|r| r == "master"),
                }
            }
            ["advert", rest @ ..] => {
                let o = opts(rest);
                let inst = self.node.get(id).expect("instance");
                let cfg = inst.vrrp().config();
                Event::Advert {
                    src: o["src"].parse().expect("src"),
                    advert: Advert {
                        version: cfg.version,
                        vrid: cfg.vrid,
                        priority: o["prio"].parse().expect("prio"),
                        max_adver_int: o
                            .get("int")
                            .map_or(cfg.advert_int, |v| v.parse().expect("int")),
                        addrs: o.get("vips").map_or_else(|| cfg.vips.clone(), |v| addrs(v)),
                        auth: Auth::None,
                    },
                }
            }
            ["lost"] => Event::Lost,
            ["shutdown"] => Event::Shutdown,
            ["removed"] => Event::Removed,
            ["reloaded"] => Event::Reloaded,
            ["replace", rest @ ..] => {
                let mut inst = Instance::new(config(rest));
                let old = self.node.get(id).expect("instance");
                inst.set_counters(old.counters().clone());
                self.node.replace(id, inst);
                return;
            }
            other => panic!("unknown event {other:?}"),
        };
        let mut outs = Vec::new();
        self.node.handle(self.now, id, ev, &mut outs);
        self.record(outs);
    }
}

fn effect(e: &Effect) -> String {
    match e {
        Effect::Send(a) => format!("send prio={}", a.priority),
        Effect::AddVips => "add_vips".into(),
        Effect::RemoveVips => "remove_vips".into(),
        Effect::Announce(n) => format!("announce {n}"),
        Effect::Entered { from, to } => format!("entered {}->{}", state(*from), state(*to)),
        Effect::Notify {
            state: s,
            priority,
            scripts,
        } => format!(
            "notify {} {priority}{}",
            news(*s),
            if *scripts { "" } else { " fifo-only" }
        ),
        Effect::NotifyEvent(ev, p) => format!(
            "event {} {p}",
            match ev {
                NotifyEvent::MasterRxLowerPri => "MASTER_RX_LOWER_PRI",
                NotifyEvent::MasterPriority => "MASTER_PRIORITY",
                NotifyEvent::BackupPriority => "BACKUP_PRIORITY",
            }
        ),
        Effect::Mail(s) => format!("mail {}", news(*s)),
        Effect::Note(n) => match n {
            Note::StartDelayed(d) => format!("note start-delayed {}", fmt_ms(*d)),
            Note::Link { up } => format!("note link {}", if *up { "up" } else { "down" }),
            Note::Priority { from, to } => format!("note priority {from}->{to}"),
            Note::AddressMismatch { src, count, error } => {
                format!("note address-mismatch src={src} count={count}: {error}")
            }
            Note::SyncHold => "note sync-hold".into(),
            Note::Lost => "note lost".into(),
        },
    }
}

/// Runs one file: the lines it produces (input lines echoed, expected lines regenerated).
fn run(text: &str) -> String {
    let mut r = Replay {
        node: Node::new(),
        now: Duration::ZERO,
        names: BTreeMap::new(),
        groups: Vec::new(),
        out: Vec::new(),
    };
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('>') {
            continue;
        }
        r.out.push(line.to_string());
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = trimmed.split_whitespace().collect();
        match words.as_slice() {
            ["instance", name, rest @ ..] => {
                let id = r.node.insert(Instance::new(config(rest)));
                r.names.insert(name.to_string(), id);
            }
            ["group", g, members @ ..] => {
                let mut specs: Vec<String> = r
                    .groups
                    .iter()
                    .zip(0..)
                    .map(|(name, i)| {
                        let ms: Vec<String> = r
                            .node
                            .group_members(GroupId(i))
                            .into_iter()
                            .map(|m| r.name(m))
                            .collect();
                        format!("{name}={}", ms.join(","))
                    })
                    .collect();
                specs.push(format!("{g}={}", members.join(",")));
                let specs: Vec<&str> = specs.iter().map(String::as_str).collect();
                r.set_groups(&specs, false);
            }
            [at, rest @ ..] if at.starts_with('@') => {
                r.advance(parse_ms(&at[1..]));
                match rest {
                    ["run"] => {}
                    ["groups", "reload", specs @ ..] => r.set_groups(specs, true),
                    ["groups", specs @ ..] => r.set_groups(specs, false),
                    [name, ev @ ..] => r.event(name, ev),
                    [] => panic!("empty event line {line:?}"),
                }
            }
            _ => panic!("cannot read {line:?}"),
        }
    }
    r.out.join("\n") + "\n"
}

#[test]
fn replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/replay");
    let bless = std::env::var_os("BLESS").is_some();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("replay dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "replay"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut failed = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        let got = run(&text);
        if got == text {
            continue;
        }
        if bless {
            std::fs::write(f, &got).expect("write");
            continue;
        }
        let (mut a, mut b) = (text.lines(), got.lines());
        let mut n = 0;
        let first = loop {
            n += 1;
            match (a.next(), b.next()) {
                (Some(x), Some(y)) if x == y => continue,
                (x, y) => break format!("line {n}: expected {x:?}, got {y:?}"),
            }
        };
        failed.push(format!("{}: {first}\n--- got:\n{got}", f.display()));
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
