//! The SMTP dialogue keepalived speaks, as a sans-IO state machine: greeting 220, `HELO`,
//! `MAIL FROM`, one `RCPT TO` per recipient, `DATA` 354, the message and `.`, 250, `QUIT`.
//! No `EHLO`, no extensions, no TLS, no authentication (keepalived has none).
//!
//! [`ReplyReader`] turns received bytes into reply codes (multi-line replies end at the line
//! whose fourth byte is a space); [`Session`] answers each code with the next command.

/// Longest reply we buffer; a server sending more without a line end is broken.
const MAX_REPLY: usize = 64 * 1024;

/// Why a dialogue failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpError {
    /// keepalived's words: `Error processing HELO cmd on SMTP server … SMTP status code = 550`.
    #[error("Error processing {stage} cmd on SMTP server. SMTP status code = {code}")]
    Rejected { stage: &'static str, code: u16 },
    #[error("malformed SMTP reply")]
    Malformed,
    #[error("Received buffer from remote SMTP server overflow our get read buffer length.")]
    Overflow,
}

/// Accumulates received bytes and yields complete replies' codes.
#[derive(Debug, Default)]
pub struct ReplyReader {
    buf: Vec<u8>,
}

impl ReplyReader {
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), SmtpError> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > MAX_REPLY {
            return Err(SmtpError::Overflow);
        }
        Ok(())
    }

    /// The code of the next complete reply, consuming it; `None` until one is complete.
    pub fn next_reply(&mut self) -> Option<Result<u16, SmtpError>> {
        let mut start = 0;
        while let Some(end) = find_crlf(&self.buf[start..]) {
            let line = &self.buf[start..start + end];
            start += end + 2;
            if line.get(3) == Some(&b'-') {
                continue;
            }
            let code = line
                .get(..3)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| d.parse::<u16>().ok())
                .filter(|_| line.len() == 3 || line[3] == b' ');
            self.buf.drain(..start);
            return Some(code.ok_or(SmtpError::Malformed));
        }
        None
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Greeting,
    Helo,
    Mail,
    Rcpt(usize),
    Data,
    Body,
    Quit,
    Done,
}

/// What to do after a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write these bytes, then read the next reply.
    Send(Vec<u8>),
    /// The message is accepted and `QUIT` answered (or the dialogue otherwise over).
    Finished,
    /// The server refused a step: send [`QUIT`] and close.
    Failed(SmtpError),
}

/// keepalived's last command after a refusal, as after a delivery.
pub const QUIT: &[u8] = b"QUIT\r\n";

/// One message's dialogue.
#[derive(Debug)]
pub struct Session {
    stage: Stage,
    helo: String,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
    delivered: bool,
}

impl Session {
    /// `message` as [`super::message::render`] makes it; lines starting with `.` are
    /// dot-stuffed here.
    pub fn new(helo: &str, from: &str, to: &[String], message: &str) -> Self {
        let mut data = Vec::with_capacity(message.len() + 8);
        for line in message.split_inclusive("\r\n") {
            if line.starts_with('.') {
                data.push(b'.');
            }
            data.extend_from_slice(line.as_bytes());
        }
        if !data.ends_with(b"\r\n") {
            data.extend_from_slice(b"\r\n");
        }
        data.extend_from_slice(b".\r\n");
        Self {
            stage: Stage::Greeting,
            helo: helo.to_string(),
            from: from.to_string(),
            to: to.to_vec(),
            data,
            delivered: false,
        }
    }

    /// Whether the server accepted the message (its reply to the final dot was 250).
    pub fn delivered(&self) -> bool {
        self.delivered
    }

    /// Feeds the next reply code.
    pub fn on_reply(&mut self, code: u16) -> Step {
        let (want, stage_name) = match self.stage {
            Stage::Greeting => (220, "connect"),
            Stage::Helo => (250, "HELO"),
            Stage::Mail => (250, "MAIL"),
            Stage::Rcpt(_) => (250, "RCPT"),
            Stage::Data => (354, "DATA"),
            Stage::Body => (250, "BODY"),
            Stage::Quit | Stage::Done => {
                self.stage = Stage::Done;
                return Step::Finished;
            }
        };
        if code != want {
            self.stage = Stage::Done;
            return Step::Failed(SmtpError::Rejected {
                stage: stage_name,
                code,
            });
        }
        let (next, cmd) = match self.stage {
            Stage::Greeting => (Stage::Helo, format!("HELO {}\r\n", self.helo).into_bytes()),
            Stage::Helo => (
                Stage::Mail,
                format!("MAIL FROM:<{}>\r\n", self.from).into_bytes(),
            ),
            Stage::Mail | Stage::Rcpt(_) => {
                let i = match self.stage {
                    Stage::Rcpt(i) => i + 1,
                    _ => 0,
                };
                match self.to.get(i) {
                    Some(to) => (Stage::Rcpt(i), format!("RCPT TO:<{to}>\r\n").into_bytes()),
                    None => (Stage::Data, b"DATA\r\n".to_vec()),
                }
            }
            Stage::Data => (Stage::Body, std::mem::take(&mut self.data)),
            Stage::Body => {
                self.delivered = true;
                (Stage::Quit, QUIT.to_vec())
            }
            Stage::Quit | Stage::Done => unreachable!("handled above"),
        };
        self.stage = next;
        Step::Send(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives a session against scripted replies; returns what the client wrote.
    fn converse(s: &mut Session, replies: &[u16]) -> (Vec<String>, Step) {
        let mut out = Vec::new();
        let mut last = Step::Finished;
        for &c in replies {
            last = s.on_reply(c);
            match &last {
                Step::Send(b) => out.push(String::from_utf8(b.clone()).unwrap()),
                _ => break,
            }
        }
        (out, last)
    }

    #[test]
    fn keepalived_dialogue() {
        let to = vec!["ops@example.com".to_string(), "noc@example.org".to_string()];
        let mut s = Session::new("vm", "root@vm", &to, "Subject: x\r\n\r\n.hidden\r\n");
        let (out, last) = converse(&mut s, &[220, 250, 250, 250, 250, 354, 250, 221]);
        assert_eq!(
            out,
            [
                "HELO vm\r\n",
                "MAIL FROM:<root@vm>\r\n",
                "RCPT TO:<ops@example.com>\r\n",
                "RCPT TO:<noc@example.org>\r\n",
                "DATA\r\n",
                "Subject: x\r\n\r\n..hidden\r\n.\r\n",
                "QUIT\r\n",
            ]
        );
        assert_eq!(last, Step::Finished);
        assert!(s.delivered());
    }

    #[test]
    fn refusals_stop_the_dialogue() {
        let to = vec!["a@b".to_string()];
        let mut s = Session::new("h", "f@h", &to, "x\r\n");
        let (_, last) = converse(&mut s, &[220, 250, 250, 550]);
        assert_eq!(
            last,
            Step::Failed(SmtpError::Rejected {
                stage: "RCPT",
                code: 550
            })
        );
        assert!(!s.delivered());
        let mut s = Session::new("h", "f@h", &to, "x\r\n");
        assert!(matches!(
            s.on_reply(554),
            Step::Failed(SmtpError::Rejected {
                stage: "connect",
                ..
            })
        ));
    }

    #[test]
    fn replies_split_and_multiline() {
        let mut r = ReplyReader::default();
        r.push(b"220-mx.example ESMTP\r\n220 ready").unwrap();
        assert_eq!(r.next_reply(), None);
        r.push(b"\r\n250 ok\r\n").unwrap();
        assert_eq!(r.next_reply(), Some(Ok(220)));
        assert_eq!(r.next_reply(), Some(Ok(250)));
        assert_eq!(r.next_reply(), None);
        r.push(b"garbage\r\n").unwrap();
        assert_eq!(r.next_reply(), Some(Err(SmtpError::Malformed)));
        assert_eq!(r.push(&vec![b'x'; MAX_REPLY + 1]), Err(SmtpError::Overflow));
    }
}
