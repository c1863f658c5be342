//! A minimal SIP digest client over UDP, for what SIPp 3.6 cannot do: RFC 8760 SHA-256
//! digest. It REGISTERs (REGISTER, 401, REGISTER with credentials computed from the
//! challenge it picked) and reports the challenges and the final status.
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use sha2::Sha256;

use crate::support::kamailio::random_token;

/// Per-attempt wait before a retransmission (UDP may drop).
const RETRANSMIT_AFTER: Duration = Duration::from_millis(500);
/// How long to wait for a final response.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A digest algorithm as written in the `algorithm` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn hash(self, input: &str) -> String {
        let bytes: Vec<u8> = match self {
            Algorithm::Md5 => Md5::digest(input.as_bytes()).to_vec(),
            Algorithm::Sha256 => Sha256::digest(input.as_bytes()).to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What one registration got.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The `WWW-Authenticate` values of the 401, in order.
    pub challenges: Vec<String>,
    /// The final status code (of the second REGISTER when challenged).
    pub status: u16,
}

/// REGISTERs `username@domain` at `registrar` answering the challenge for `algorithm` with
/// `password` (`Expires: 0`). Panics when no such challenge or no final answer comes.
pub fn register(
    registrar: SocketAddr,
    username: &str,
    domain: &str,
    password: &str,
    algorithm: Algorithm,
) -> Outcome {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a UDP socket");
    let local = socket.local_addr().expect("local address");
    let call_id = format!("{}@127.0.0.1", random_token());
    let tag = random_token();
    let request = |cseq: u32, authorization: Option<&str>| {
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        format!(
            "REGISTER sip:{domain} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{username}@{domain}>;tag={tag}\r\n\
             To: <sip:{username}@{domain}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: <sip:{username}@{local}>\r\n\
             {auth}Expires: 0\r\n\
             Content-Length: 0\r\n\r\n",
            random_token()
        )
    };

    let first = exchange(&socket, registrar, &request(1, None));
    let challenges = headers(&first, "WWW-Authenticate");
    if status_of(&first) != 401 {
        return Outcome {
            challenges,
            status: status_of(&first),
        };
    }
    let challenge = challenges
        .iter()
        .find(|c| {
            param(c, "algorithm")
                .unwrap_or_else(|| "MD5".into())
                .eq_ignore_ascii_case(algorithm.name())
        })
        .unwrap_or_else(|| panic!("no {} challenge in {challenges:?}", algorithm.name()));
    let realm = param(challenge, "realm").expect("realm in the challenge");
    let nonce = param(challenge, "nonce").expect("nonce in the challenge");
    let qop = param(challenge, "qop");
    let uri = format!("sip:{domain}");
    let ha1 = algorithm.hash(&format!("{username}:{realm}:{password}"));
    let ha2 = algorithm.hash(&format!("REGISTER:{uri}"));
    let cnonce = random_token();
    let nc = "00000001";
    let mut authorization = format!(
        "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm={}",
        algorithm.name()
    );
    let response = if qop
        .as_deref()
        .is_some_and(|q| q.split(',').any(|q| q.trim() == "auth"))
    {
        authorization.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
        algorithm.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
    } else {
        algorithm.hash(&format!("{ha1}:{nonce}:{ha2}"))
    };
    authorization.push_str(&format!(", response=\"{response}\""));
    if let Some(opaque) = param(challenge, "opaque") {
        authorization.push_str(&format!(", opaque=\"{opaque}\""));
    }
    let second = exchange(&socket, registrar, &request(2, Some(&authorization)));
    Outcome {
        challenges,
        status: status_of(&second),
    }
}

/// Sends `request` (retransmitting) and returns the first final response.
fn exchange(socket: &UdpSocket, registrar: SocketAddr, request: &str) -> String {
    let deadline = Instant::now() + TIMEOUT;
    socket
        .set_read_timeout(Some(RETRANSMIT_AFTER))
        .expect("set read timeout");
    let mut buf = vec![0u8; 65535];
    loop {
        assert!(
            Instant::now() < deadline,
            "no final response from {registrar} within {TIMEOUT:?}"
        );
        socket
            .send_to(request.as_bytes(), registrar)
            .expect("send REGISTER");
        let until = Instant::now() + RETRANSMIT_AFTER;
        while Instant::now() < until {
            let Ok((n, _)) = socket.recv_from(&mut buf) else {
                break;
            };
            let response = String::from_utf8_lossy(&buf[..n]).to_string();
            if status_of(&response) >= 200 {
                return response;
            }
        }
    }
}

fn status_of(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The values of every header `name` (case-insensitive).
fn headers(response: &str, name: &str) -> Vec<String> {
    response
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

/// A parameter of a `Digest ...` challenge, unquoted.
fn param(challenge: &str, name: &str) -> Option<String> {
    let rest = challenge.trim().strip_prefix("Digest").unwrap_or(challenge);
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_string();
        if key.is_empty() {
            return None;
        }
        let value: String = if chars.peek() == Some(&'"') {
            chars.next();
            chars.by_ref().take_while(|c| *c != '"').collect()
        } else {
            chars
                .by_ref()
                .take_while(|c| *c != ',')
                .collect::<String>()
                .trim()
                .to_string()
        };
        if key.eq_ignore_ascii_case(name) {
            return Some(value);
        }
    }
}
