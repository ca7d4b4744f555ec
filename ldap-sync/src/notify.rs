//! systemd's readiness protocol (sd_notify), written out: one datagram to
//! `$NOTIFY_SOCKET`. Without the variable (not under systemd) it does
//! nothing.

use std::os::unix::net::UnixDatagram;

fn send(message: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    // An abstract socket is named with a leading '@'.
    let result = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|addr| socket.send_to_addr(message.as_bytes(), &addr))
    } else {
        socket.send_to(message.as_bytes(), &path)
    };
    if let Err(e) = result {
        crate::log::warning(&format!("systemd could not be notified: {e}"));
    }
}

pub fn ready() {
    send("READY=1\nSTATUS=running");
}

pub fn stopping() {
    send("STOPPING=1");
}
