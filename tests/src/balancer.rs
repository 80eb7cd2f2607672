//! HAProxy (Debian's `haproxy`) in TCP mode in front of gateways, as
//! `config/haproxy.cfg` sets it up: `send-proxy-v2` to every node, health checks on
//! the admin listener's `/readyz`. Started per test on 127.0.0.1; dropped, it stops.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::TestGateway;

pub struct Haproxy {
    child: Child,
    pub sftp: SocketAddr,
    pub https: SocketAddr,
    socket: PathBuf,
}

/// One node behind the balancer: its SFTP, HTTPS and admin addresses.
pub struct Node {
    pub sftp: SocketAddr,
    pub https: SocketAddr,
    pub admin: SocketAddr,
}

impl From<&TestGateway> for Node {
    fn from(gw: &TestGateway) -> Node {
        Node {
            sftp: gw.sftp,
            https: gw.https,
            admin: gw.admin,
        }
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Haproxy {
    /// Starts a balancer whose connections to the nodes come from `source` (a loopback
    /// address such as 127.0.0.9, which the gateways list in `proxy_protocol_from`).
    pub fn start(dir: &Path, nodes: &[Node], source: &str) -> Result<Haproxy> {
        let sftp = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let https = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let socket = dir.join("haproxy.sock");
        let servers = |kind: &str| -> String {
            nodes
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let addr = if kind == "sftp" { n.sftp } else { n.https };
                    format!("    server gw{i} {addr} check port {}\n", n.admin.port())
                })
                .collect()
        };
        let cfg = format!(
            "global\n    maxconn 1000\n    stats socket {sock} mode 600 level admin\n\n\
             defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n    retries 2\n    option redispatch\n\n\
             frontend sftp\n    bind {sftp}\n    default_backend gateways_sftp\n\n\
             frontend https\n    bind {https}\n    default_backend gateways_https\n\n\
             backend gateways_sftp\n    balance leastconn\n    option httpchk GET /readyz\n    default-server send-proxy-v2 source {source} inter 500ms fall 2 rise 1\n{s}\n\
             backend gateways_https\n    balance leastconn\n    option httpchk GET /readyz\n    default-server send-proxy-v2 source {source} inter 500ms fall 2 rise 1\n{h}",
            sock = socket.display(),
            s = servers("sftp"),
            h = servers("https"),
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, cfg)?;
        let log = std::fs::File::create(dir.join("haproxy.log"))?;
        let child = Command::new(haproxy_bin())
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .context("haproxy (apt-get install haproxy; scripts/test-setup.sh)")?;
        let mut lb = Haproxy {
            child,
            sftp,
            https,
            socket,
        };
        lb.wait_all_up(nodes.len(), Duration::from_secs(20))?;
        Ok(lb)
    }

    /// Waits until the health checks see every node up in both backends.
    pub fn wait_all_up(&mut self, nodes: usize, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("haproxy exited: {status}");
            }
            if self.servers_up().unwrap_or(0) == 2 * nodes {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("haproxy: nodes not up: {}", self.stat().unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// HAProxy's own view, `show stat` on its admin socket (CSV).
    pub fn stat(&self) -> Result<String> {
        let mut s = UnixStream::connect(&self.socket)?;
        s.write_all(b"show stat\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    }

    /// Servers (node × backend) whose health check passes.
    pub fn servers_up(&self) -> Result<usize> {
        let stat = self.stat()?;
        Ok(stat
            .lines()
            .filter(|l| l.starts_with("gateways_") && !l.contains(",BACKEND,"))
            .filter(|l| l.split(',').nth(17) == Some("UP"))
            .count())
    }
}

fn haproxy_bin() -> &'static str {
    if Path::new("/usr/sbin/haproxy").exists() {
        "/usr/sbin/haproxy"
    } else {
        "haproxy"
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
