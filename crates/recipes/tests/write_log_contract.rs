//! The write log port's contract (`cache_store::write_log`) on every
//! implementation: `LocalWriteLog`, Redis, and a Redis Cluster.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_redis::{RedisConfig, RedisWriteLog};
use cache_redis_harness::{RedisCluster, RedisServer};
use cache_store::write_log::WriteLog;

async fn log(url: &str, name: &str) -> Arc<dyn WriteLog> {
    RedisWriteLog::connect(&RedisConfig::from_url(url).unwrap(), name)
        .await
        .unwrap()
}

/// The write log port's contract, on two instances of one log: appends
/// against a capacity, one leader at a time (taken over once its lease ran
/// out), what a leader read and never acknowledged read again first by
/// the next, acknowledgement removes.
async fn write_log_contract(name: &str, a: Arc<dyn WriteLog>, b: Arc<dyn WriteLog>) {
    use cache_store::write_log::{Appended, Read};
    let lease = Duration::from_millis(300);
    for i in 0..5 {
        let appended = a
            .append(&format!("k{i}"), Bytes::from(i.to_string()), 5)
            .await
            .unwrap();
        assert_eq!(appended, Appended::Logged, "{name}");
    }
    assert_eq!(
        a.append("k5", Bytes::from("5"), 5).await.unwrap(),
        Appended::Full,
        "{name}"
    );
    assert_eq!(b.unflushed().await.unwrap(), 5, "{name}");
    assert_eq!(
        a.read(10).await.unwrap(),
        Read::NotLeading,
        "{name}: read without the lease"
    );
    assert!(a.lead(lease).await.unwrap(), "{name}");
    assert!(!b.lead(lease).await.unwrap(), "{name}: two leaders");
    assert!(a.lead(lease).await.unwrap(), "{name}: the holder extends");
    let Read::Writes(first) = a.read(2).await.unwrap() else {
        panic!("{name}")
    };
    let keys: Vec<&str> = first.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(keys, ["k0", "k1"], "{name}: oldest first");
    assert_eq!(first[1].value, Bytes::from("1"), "{name}");
    // a dies holding k0 and k1; b takes over once the lease ran out.
    tokio::time::sleep(lease + Duration::from_millis(50)).await;
    assert!(b.lead(lease).await.unwrap(), "{name}: no takeover");
    assert_eq!(
        a.read(10).await.unwrap(),
        Read::NotLeading,
        "{name}: a read after losing the lease"
    );
    let Read::Writes(again) = b.read(10).await.unwrap() else {
        panic!("{name}")
    };
    assert_eq!(again, first, "{name}: the dead leader's batch first, alone");
    b.ack(again.iter().map(|w| w.id.clone()).collect())
        .await
        .unwrap();
    assert_eq!(b.unflushed().await.unwrap(), 3, "{name}");
    let Read::Writes(rest) = b.read(10).await.unwrap() else {
        panic!("{name}")
    };
    let keys: Vec<&str> = rest.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(keys, ["k2", "k3", "k4"], "{name}");
    b.ack(rest.iter().map(|w| w.id.clone()).collect())
        .await
        .unwrap();
    assert_eq!(b.read(10).await.unwrap(), Read::Writes(vec![]), "{name}");
    assert_eq!(a.unflushed().await.unwrap(), 0, "{name}");
    b.release().await.unwrap();
    assert!(
        a.lead(lease).await.unwrap(),
        "{name}: the lease given up is free"
    );
    // Values are bytes, not text: binary, empty and text-like come back
    // as written; keys are any text the port takes.
    let odd: [(&str, Bytes); 3] = [
        ("bin", Bytes::from_static(&[0, 0xff, 0xc1, b'\n', 0x80])),
        ("empty", Bytes::new()),
        ("ключ {x} *", Bytes::from_static(b"12")),
    ];
    for (key, value) in &odd {
        let appended = a.append(key, value.clone(), 100).await.unwrap();
        assert_eq!(appended, Appended::Logged, "{name}");
    }
    let Read::Writes(read) = a.read(10).await.unwrap() else {
        panic!("{name}")
    };
    let got: Vec<(&str, Bytes)> = read
        .iter()
        .map(|w| (w.key.as_str(), w.value.clone()))
        .collect();
    assert_eq!(got, odd.to_vec(), "{name}: what was written");
    a.ack(read.iter().map(|w| w.id.clone()).collect())
        .await
        .unwrap();
    a.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_log_contract_holds_in_process_on_redis_and_on_cluster() {
    let local = cache_store::write_log::LocalWriteLog::new();
    let server = RedisServer::start();
    let cluster = RedisCluster::start();
    tokio::join!(
        write_log_contract(
            "local",
            Arc::new(local.instance()),
            Arc::new(local.instance())
        ),
        async {
            write_log_contract(
                "redis",
                log(&server.url(), "c").await,
                log(&server.url(), "c").await,
            )
            .await
        },
        async {
            write_log_contract(
                "cluster",
                log(&cluster.url(), "c").await,
                log(&cluster.url(), "c").await,
            )
            .await
        },
    );
}
