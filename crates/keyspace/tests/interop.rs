//! Interop: a JSON keyspace on a real Redis writes what `redis-cli GET`
//! shows and Python's `json` module reads, and reads back typed what Python
//! wrote. Needs redis-server, redis-cli (Debian: `apt-get install
//! redis-server`) and python3; fails loudly without them.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use cache_keyspace::{Json, Keyspace};
use cache_port::Cache;
use cache_redis_harness::RedisServer;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Product {
    id: u64,
    name: String,
    cents: u64,
    tags: Vec<String>,
    discontinued: bool,
}

fn run(program: &str, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}); install it (Debian: apt-get install redis-server python3)")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A Python client with nothing but the standard library: RESP over a
/// socket. `GET` then `SET` of another key, as a service in Python would.
const PYTHON: &str = r#"
import json, socket, sys
port, read_key, write_key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
def call(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    s.sendall(out)
    line = f.readline()
    if line[:1] == b"$":
        n = int(line[1:])
        data = f.read(n + 2)[:-2]
        return data
    return line
product = json.loads(call("GET", read_key))
assert product["name"] == "lampe à pied", product
assert product["tags"] == ["lighting", "floor"], product
product["cents"] += 1
product["name"] = "written by python"
call("SET", write_key, json.dumps(product))
print("ok", product["id"])
"#;

#[tokio::test]
async fn json_values_are_read_by_redis_cli_and_python_and_python_writes_are_read_back_typed() {
    let server = RedisServer::start();
    let cache: Arc<dyn Cache> = Arc::new(
        cache_redis::RedisConfig::from_url(&server.url())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let products = Keyspace::<u64, Product>::builder(Arc::clone(&cache), "shop:product")
        .codec(Json)
        .build()
        .unwrap();
    let lamp = Product {
        id: 7,
        name: "lampe à pied".into(),
        cents: 1999,
        tags: vec!["lighting".into(), "floor".into()],
        discontinued: false,
    };
    products.set(&7, &lamp).await.unwrap();

    // A person with redis-cli sees plain JSON.
    let port = server.port().to_string();
    let shown = run(
        "redis-cli",
        &["-p", &port, "--no-raw", "GET", "shop:product:7"],
        "",
    );
    let raw = run(
        "redis-cli",
        &["-p", &port, "--raw", "GET", "shop:product:7"],
        "",
    );
    assert_eq!(
        raw.trim_end(),
        serde_json::to_string(&lamp).unwrap(),
        "{shown}"
    );

    // Python reads it with `json` and writes its own.
    let said = run(
        "python3",
        &["-c", PYTHON, &port, "shop:product:7", "shop:product:8"],
        "",
    );
    assert_eq!(said.trim(), "ok 7");
    let from_python = products.get(&8).await.unwrap().unwrap();
    assert_eq!(
        from_python,
        Product {
            name: "written by python".into(),
            cents: 2000,
            ..lamp
        }
    );
    cache.close().await.unwrap();
}
