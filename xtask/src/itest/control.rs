//! The control port: the cross-cloud tests stop and start emulators through it (protocol
//! in the [module docs](super)).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

use super::emulators::Emulators;

/// The control server for the cross-cloud tests; returns its address.
pub(super) fn spawn_control_server(emus: Arc<Emulators>) -> Result<String, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("control port: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?.to_string();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let emus = Arc::clone(&emus);
            thread::spawn(move || serve_control(conn, &emus));
        }
    });
    Ok(addr)
}

fn serve_control(conn: TcpStream, emus: &Emulators) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    for line in BufReader::new(conn).lines() {
        let Ok(line) = line else { return };
        let reply = match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["stop", name] => emus.stop(name),
            ["start", name] => emus.start(name),
            _ => Err(format!("unknown command {line:?}")),
        };
        println!("xtask: itest: control: {line}: {reply:?}");
        let answer = match reply {
            Ok(()) => "ok\n".to_owned(),
            Err(e) => format!("error: {}\n", e.replace('\n', " ")),
        };
        if out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}
