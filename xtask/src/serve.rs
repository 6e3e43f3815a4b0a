//! Serving `web/` on 127.0.0.1 with cross-origin isolation (axum + tower-http's `ServeDir`).
//!
//! Shared memory between Web Workers (`SharedArrayBuffer`) needs a cross-origin isolated page,
//! which takes two response headers: `Cross-Origin-Opener-Policy: same-origin` and
//! `Cross-Origin-Embedder-Policy: require-corp`. Every response carries them, and
//! `Cache-Control: no-cache`, so a rebuilt module is never served stale.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Context, Result};
use axum::http::{header, HeaderName, HeaderValue};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// The two headers that make a page cross-origin isolated.
pub const ISOLATION_HEADERS: [(&str, &str); 2] = [
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-embedder-policy", "require-corp"),
];

/// Whether responses carry the [`ISOLATION_HEADERS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// They do: the page is cross-origin isolated.
    On,
    /// They do not (for the tests of a page that is not).
    Off,
}

/// The app: files from `dir` (`index.html` for directories), with the isolation headers if
/// `isolation` says so.
fn router(dir: &Path, isolation: Isolation) -> Router {
    let mut router = Router::new().fallback_service(ServeDir::new(dir)).layer(
        SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ),
    );
    if isolation == Isolation::On {
        for (name, value) in ISOLATION_HEADERS {
            router = router.layer(SetResponseHeaderLayer::overriding(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            ));
        }
    }
    router
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the server's runtime")
}

/// Binds 127.0.0.1:`port` (0: any free port), saying plainly when the port is taken.
async fn bind(port: u16) -> Result<TcpListener> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpListener::bind(addr)
        .await
        .map_err(|err| match err.kind() {
            io::ErrorKind::AddrInUse => anyhow!(
            "port {port} on 127.0.0.1 is already in use (is another `cargo xtask demo` running?): \
             stop whatever uses it, or choose another port with `--port`"
        ),
            io::ErrorKind::PermissionDenied => anyhow!(
                "not allowed to listen on port {port} (ports below 1024 need privileges): \
             choose another port with `--port`"
            ),
            _ => anyhow!("cannot listen on {addr}: {err}"),
        })
}

/// Serves `dir` on 127.0.0.1:`port` until `shutdown` completes; `ready` gets the address
/// once it listens.
async fn serve(
    dir: &Path,
    port: u16,
    isolation: Isolation,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let listener = bind(port).await?;
    ready(listener.local_addr()?);
    axum::serve(listener, router(dir, isolation))
        .with_graceful_shutdown(shutdown)
        .await
        .context("the server failed")
}

/// Serves `dir` on 127.0.0.1:`port` until Ctrl-C; `ready` gets the address once it listens.
pub fn until_ctrl_c(dir: &Path, port: u16, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    runtime()?.block_on(serve(dir, port, Isolation::On, ready, async {
        // An error here means no signal handler could be installed: serve on until the
        // process is killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }))
}

/// A server on a free port in a background thread, stopped when dropped.
pub struct Background {
    url: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Starts serving `dir`, with the isolation headers or without.
    pub fn start(dir: &Path, isolation: Isolation) -> Result<Background> {
        let dir: PathBuf = dir.to_path_buf();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<SocketAddr>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let served = runtime().and_then(|runtime| {
                let ready = |addr| {
                    let _ = ready_tx.send(Ok(addr));
                };
                runtime.block_on(serve(&dir, 0, isolation, ready, async {
                    let _ = stop_rx.await;
                }))
            });
            if let Err(err) = served {
                // Whoever waits for the address learns why; afterwards nobody listens.
                let _ = ready_tx.send(Err(err));
            }
        });
        let addr = ready_rx
            .recv()
            .map_err(|_| anyhow!("the server thread ended before it listened"))??;
        Ok(Background {
            url: format!("http://{addr}/"),
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The server's base URL, ending in `/`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    /// The raw response to `GET path`.
    fn get(url: &str, path: &str) -> String {
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let mut stream = TcpStream::connect(&addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    #[test]
    fn serves_files_with_the_isolation_headers_or_without() {
        let dir = std::env::temp_dir().join(format!("xtask-serve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), "<p>hello</p>").unwrap();
        std::fs::write(dir.join("app.wasm"), b"\0asm").unwrap();
        let server = Background::start(&dir, Isolation::On).unwrap();
        let plain = Background::start(&dir, Isolation::Off).unwrap();
        let unisolated = get(plain.url(), "/").to_ascii_lowercase();
        assert!(unisolated.starts_with("http/1.1 200"), "{unisolated}");
        for (name, _) in ISOLATION_HEADERS {
            assert!(!unisolated.contains(name), "{name} sent: {unisolated}");
        }
        drop(plain);

        let page = get(server.url(), "/").to_ascii_lowercase();
        assert!(page.starts_with("http/1.1 200"), "{page}");
        for (name, value) in ISOLATION_HEADERS {
            assert!(
                page.contains(&format!("{name}: {value}")),
                "{name} missing: {page}"
            );
        }
        assert!(page.ends_with("<p>hello</p>"));
        let wasm = get(server.url(), "/app.wasm").to_ascii_lowercase();
        assert!(wasm.contains("content-type: application/wasm"), "{wasm}");
        let missing = get(server.url(), "/nothing-here.js").to_ascii_lowercase();
        assert!(missing.starts_with("http/1.1 404"), "{missing}");

        drop(server);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_taken_port_is_reported_plainly() {
        let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = runtime()
            .unwrap()
            .block_on(bind(port))
            .expect_err("the port is taken");
        assert!(
            err.to_string()
                .contains(&format!("port {port} on 127.0.0.1 is already in use")),
            "{err}"
        );
    }
}
