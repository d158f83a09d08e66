//! DNS_CHECK's side of the wire: the query it builds from a configured name and the judgement of
//! whatever datagram comes back. Input: two bytes of query id, one byte choosing the record
//! type, a length-prefixed name, then the reply datagram.
//!
//! Beyond "no panic": the query is well formed (header, one question, labels of at most 63
//! bytes, the type and class IN), our own query turned into a NOERROR answer is judged up, and
//! a reply is only ever judged up when it is a NOERROR response with our id and an answer.

#![no_main]

use checks::probe::dns::{build_query, judge, qtype_code};
use libfuzzer_sys::fuzz_target;

const TYPES: [&str; 7] = ["A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA"];

/// Walks the question of a query we built; returns the offset after its QTYPE/QCLASS.
fn question_end(q: &[u8]) -> usize {
    let mut at = 12;
    loop {
        let len = usize::from(q[at]);
        assert!(len <= 63, "label of {len} bytes");
        at += 1 + len;
        if len == 0 {
            return at + 4;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [i0, i1, t, nlen, rest @ ..] = data else {
        return;
    };
    let id = u16::from_be_bytes([*i0, *i1]);
    let qtype = qtype_code(TYPES[usize::from(*t) % TYPES.len()]).expect("known type");
    let (name, reply) = rest.split_at(usize::from(*nlen).min(rest.len()));
    let name = String::from_utf8_lossy(name);

    let q = build_query(id, &name, qtype);
    assert_eq!(&q[..2], &id.to_be_bytes());
    assert_eq!(&q[2..12], &[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    let end = question_end(&q);
    assert_eq!(end, q.len(), "trailing bytes after the question");
    assert_eq!(&q[end - 4..], &[(qtype >> 8) as u8, qtype as u8, 0, 1]);
    assert!(judge(id, &q).is_err(), "a query is not a response");

    let mut answered = q.clone();
    answered[2] |= 0x80;
    answered[7] = 1;
    assert_eq!(judge(id, &answered), Ok(()));

    let verdict = judge(id, reply);
    if verdict.is_ok() {
        assert!(reply.len() >= 12);
        assert_eq!(u16::from_be_bytes([reply[0], reply[1]]), id);
        assert!(reply[2] & 0x80 != 0 && reply[3] & 0x0f == 0);
        assert!(reply[6] != 0 || reply[7] != 0);
    }
});
