//! The sidecar relays: in gvproxy's namespace bottle holds one listener per
//! sidecar port (made by `netns`); each connection the guest opens to
//! `proxy.internal:<port>` arrives there through gvproxy's NAT and is joined
//! to the sidecar's Unix socket in the run directory. The sidecars
//! themselves never listen on TCP.
use std::path::PathBuf;
use tokio::net::{TcpListener, UnixStream};

/// Accept on `listener` forever, joining each connection to `socket`.
pub async fn serve(listener: std::net::TcpListener, socket: PathBuf) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    loop {
        let (mut guest, _) = listener.accept().await?;
        let socket = socket.clone();
        tokio::spawn(async move {
            // A sidecar that is down refuses the guest; the run goes on.
            let Ok(mut sidecar) = UnixStream::connect(&socket).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut guest, &mut sidecar).await;
        });
    }
}
