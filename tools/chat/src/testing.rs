//! A chat-completions server on localhost that answers with a script, for the tests of the
//! stages that call a served model (feature `testing`).

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};

/// One scripted answer of the fake chat server.
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub delay_ms: u64,
    /// Extra header lines, each ending in `\r\n`.
    pub headers: &'static str,
}

impl Answer {
    pub fn ok(body: String) -> Answer {
        Answer {
            status: 200,
            body,
            delay_ms: 0,
            headers: "",
        }
    }
}

/// A chat-completions server on localhost that answers requests with `script`, in order,
/// and keeps every request body.
pub fn serve(script: Vec<Answer>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    std::thread::spawn(move || {
        let mut script = script.into_iter();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            seen.lock().unwrap().push(String::from_utf8(body).unwrap());
            let answer = script.next().unwrap_or(Answer {
                status: 500,
                body: "{\"error\": \"script exhausted\"}".into(),
                delay_ms: 0,
                headers: "",
            });
            std::thread::sleep(std::time::Duration::from_millis(answer.delay_ms));
            let _ = write!(
                stream,
                "HTTP/1.1 {} Scripted\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n{}\r\n{}",
                answer.status,
                answer.body.len(),
                answer.headers,
                answer.body
            );
        }
    });
    (url, requests)
}
