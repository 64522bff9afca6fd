//! A page of "another site" for the embedding tests: one HTML document
//! served on 127.0.0.1 (reached as `http://localhost:P`, another site than
//! `http://127.0.0.1:Q` for the browser).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct PageHost {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl PageHost {
    /// Serves `html` to every request on `port` (0: any free port).
    pub async fn start(port: u16, html: String) -> PageHost {
        Self::start_pages(port, vec![("/".into(), html)]).await
    }

    /// Serves each `(path, html)`; an unknown path gets the first page.
    pub async fn start_pages(port: u16, pages: Vec<(String, String)>) -> PageHost {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let pages = pages.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let n = conn.read(&mut buf).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&buf[..n]);
                    let path = request.split_whitespace().nth(1).unwrap_or("/");
                    let html = pages
                        .iter()
                        .find(|(p, _)| p == path)
                        .unwrap_or(&pages[0])
                        .1
                        .clone();
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{html}",
                        html.len()
                    );
                    let _ = conn.write_all(resp.as_bytes()).await;
                });
            }
        });
        PageHost { port, task }
    }

    /// The page's address as the browser names it.
    pub fn url(&self) -> String {
        self.url_of("/")
    }

    pub fn url_of(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port)
    }

    /// A page of this host that frames `src`.
    pub fn framing(title: &str, src: &str) -> String {
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
             <body><h1>{title}</h1>\
             <iframe id=\"portal\" src=\"{src}\" width=\"1200\" height=\"760\" title=\"Webhooks\"></iframe>\
             </body></html>"
        )
    }
}

impl Drop for PageHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}
