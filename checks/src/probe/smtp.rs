//! SMTP_CHECK: greeting 220, `HELO` answered 250, then `QUIT`.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::health::Outcome;
use crate::probe::net;
use crate::spec::{Connect, SmtpCheck, Target};

/// The final reply code of a (possibly multi-line) SMTP reply, if `line` ends it.
/// `250-more` continues; `250 done` ends; `None` for continuation or garbage.
pub fn final_code(line: &str) -> Option<u16> {
    let b = line.as_bytes();
    if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b.get(3) == Some(&b'-') {
        return None;
    }
    line[..3].parse().ok()
}

/// A prepared SMTP_CHECK.
pub struct SmtpProbe {
    connect: Connect,
    dest: SocketAddr,
    helo: String,
}

impl SmtpProbe {
    /// Prepare; `helo_name` defaults to the host name.
    pub fn new(spec: &SmtpCheck, target: &Target) -> Self {
        let helo = spec.helo_name.clone().unwrap_or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "localhost".into())
        });
        Self {
            connect: spec.connect.clone(),
            dest: spec.connect.destination(target, 25),
            helo,
        }
    }

    /// One SMTP conversation.
    pub async fn run(&self) -> Outcome {
        match self.converse().await {
            Ok(()) => Outcome::up("HELO accepted"),
            Err(e) => Outcome::down(e),
        }
    }

    async fn converse(&self) -> Result<(), String> {
        let stream = net::connect(&self.connect, self.dest)
            .await
            .map_err(|e| format!("connect {}: {e}", self.dest))?;
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        expect(&mut r, 220, "greeting").await?;
        w.write_all(format!("HELO {}\r\n", self.helo).as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        expect(&mut r, 250, "HELO").await?;
        let _ = w.write_all(b"QUIT\r\n").await;
        Ok(())
    }
}

async fn expect<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    want: u16,
    what: &str,
) -> Result<(), String> {
    let mut line = String::new();
    for _ in 0..64 {
        line.clear();
        if r.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
            return Err(format!("{what}: connection closed"));
        }
        if let Some(code) = final_code(&line) {
            return if code == want {
                Ok(())
            } else {
                Err(format!("{what}: reply {code}"))
            };
        }
    }
    Err(format!("{what}: reply too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines() {
        assert_eq!(final_code("220 mx ESMTP\r\n"), Some(220));
        assert_eq!(final_code("250-PIPELINING\r\n"), None);
        assert_eq!(final_code("250\r\n"), Some(250));
        assert_eq!(final_code("hello"), None);
    }
}
