//! Micro-benchmarks of the per-request work of a poll: both clouds' answer parsers (a
//! group of the benchmark scenario: 5 topics × 10 partitions, long names) and request
//! signing (Alibaba V2 and V3, Tencent TC3). Divan counts allocations per iteration.
//!
//! Run: `cargo bench --bench hot_paths` (filter: `cargo bench --bench hot_paths -- parse`).

use divan::Bencher;
use divan::counter::BytesCount;
use serde_json::{Value, json};

use kafka_cloud_lag_exporter::providers::{alibaba, tencent};
use kcle_cloud::alibaba::sign as ali;
use kcle_cloud::tencent::sign as tc;

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

const TOPICS: usize = 5;
const PARTITIONS: i64 = 10;

fn topic(t: usize) -> String {
    format!("orders-settlement-events-{t:05}")
}

/// A `GetConsumerProgress` answer of one group in the shape of
/// `tests/fixtures/alibaba/get_consumer_progress.json`, with the newer member fields.
fn alibaba_answer() -> Vec<u8> {
    let topics: Vec<Value> = (0..TOPICS)
        .map(|t| {
            let offsets: Vec<Value> = (0..PARTITIONS)
                .map(|p| {
                    json!({
                        "Partition": p, "BrokerOffset": 4_000_500 + p, "ConsumerOffset": 4_000_000 + p,
                        "Accumulate": 500, "LastTimestamp": 1_766_874_931_649_i64 + p,
                        "ClientId": "payments-settlement-consumer-1", "ClientIp": "10.0.3.17",
                        "MemberId": "payments-settlement-consumer-1-0b6c1b7e-1d3e-4f43-9f9c-2a4d6c1f0e11"
                    })
                })
                .collect();
            json!({"Topic": topic(t), "TotalDiff": 5000, "LastTimestamp": 1_766_874_931_649_i64,
                   "OffsetList": {"OffsetList": offsets}})
        })
        .collect();
    serde_json::to_vec(&json!({
        "RequestId": "252820E1-A2E6-45F2-B4C9-1056B8CE1234", "Code": 200,
        "Message": "operation success.", "Success": true,
        "ConsumerProgress": {
            "TotalDiff": 25000, "LastTimestamp": 1_766_874_931_671_i64, "state": "STABLE",
            "TopicList": {"TopicList": topics},
            "RebalanceInfoList": {"RebalanceInfoList": [
                {"GroupId": "payments-settlement-consumer", "Generation": 12,
                 "LastRebalanceTimestamp": 1_766_870_000_000_i64, "Reason": "member joined",
                 "RebalanceSuccess": true, "RebalanceTimeConsuming": 3012}
            ]}
        }
    }))
    .expect("JSON values serialize")
}

/// A one-page `DescribeGroupOffsets` answer in the shape of
/// `tests/fixtures/tencent/describe_group_offsets.json`.
fn tencent_answer() -> Vec<u8> {
    let topics: Vec<Value> = (0..TOPICS)
        .map(|t| {
            let partitions: Vec<Value> = (0..PARTITIONS)
                .map(|p| {
                    json!({"Partition": p, "Offset": 22_689_638 + p, "Metadata": "", "ErrorCode": 0,
                           "LogEndOffset": 22_690_138 + p, "Lag": 500})
                })
                .collect();
            json!({"Topic": topic(t), "Partitions": partitions})
        })
        .collect();
    serde_json::to_vec(&json!({
        "Response": {
            "Result": {"TotalCount": TOPICS, "TopicList": topics},
            "RequestId": "9d1cf3ae-8cb3-4b4b-b5d5-2c6a0e3b9d10"
        }
    }))
    .expect("JSON values serialize")
}

mod parse {
    use super::*;

    #[divan::bench]
    fn alibaba_get_consumer_progress(bencher: Bencher) {
        let body = alibaba_answer();
        let partitions = alibaba::parse_consumer_progress(&body)
            .expect("the answer parses")
            .partition_count();
        assert_eq!(partitions, TOPICS * PARTITIONS as usize);
        bencher
            .counter(BytesCount::new(body.len()))
            .bench(|| alibaba::parse_consumer_progress(divan::black_box(&body)));
    }

    #[divan::bench]
    fn tencent_describe_group_offsets(bencher: Bencher) {
        let body = tencent_answer();
        let partitions = tencent::parse_group_offsets(&body)
            .expect("the answer parses")
            .partition_count();
        assert_eq!(partitions, TOPICS * PARTITIONS as usize);
        bencher
            .counter(BytesCount::new(body.len()))
            .bench(|| tencent::parse_group_offsets(divan::black_box(&body)));
    }
}

/// Signing a `GetConsumerProgress` or `DescribeGroupOffsets` request, every stage as the
/// providers run them (`providers/alibaba::build_request`, `kcle_cloud::tencent::sign`).
mod sign {
    use super::*;

    const SECRET: &str = "bench-secret-value-0123456789";
    const NONCE: &str = "3b9f1c2e-8d4a-4e5f-9a6b-7c8d9e0f1a2b";
    const NOW: i64 = 1_766_874_931;

    fn params() -> Vec<(String, String)> {
        [
            ("RegionId", "cn-hangzhou"),
            ("InstanceId", "alikafka_post-cn-sim0001"),
            ("ConsumerId", "payments-settlement-consumer-00042"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[divan::bench]
    fn alibaba_v2(bencher: Bencher) {
        bencher.bench(|| {
            let timestamp = ali::timestamp(NOW).expect("a valid time");
            let mut query = params();
            for (k, v) in [
                ("Action", "GetConsumerProgress"),
                ("Version", "2019-09-16"),
                ("Format", "JSON"),
                ("AccessKeyId", "LTAI5tBenchKeyId"),
                ("SignatureMethod", ali::V2_SIGNATURE_METHOD),
                ("SignatureVersion", ali::V2_SIGNATURE_VERSION),
                ("SignatureNonce", NONCE),
                ("Timestamp", timestamp.as_str()),
            ] {
                query.push((k.to_string(), v.to_string()));
            }
            let canonical = ali::canonicalized_query(divan::black_box(&query));
            let string_to_sign = ali::v2_string_to_sign("POST", &canonical);
            let signature = ali::v2_signature(SECRET, &string_to_sign);
            format!(
                "http://alikafka.cn-hangzhou.aliyuncs.com/?{canonical}&Signature={}",
                ali::percent_encode(&signature)
            )
        });
    }

    #[divan::bench]
    fn alibaba_v3(bencher: Bencher) {
        bencher.bench(|| {
            let timestamp = ali::timestamp(NOW).expect("a valid time");
            let query = params();
            let canonical_query = ali::v3_canonical_query(divan::black_box(&query));
            let headers: Vec<(String, String)> = [
                ("host", "alikafka.cn-hangzhou.aliyuncs.com"),
                ("x-acs-action", "GetConsumerProgress"),
                ("x-acs-version", "2019-09-16"),
                ("x-acs-date", timestamp.as_str()),
                ("x-acs-signature-nonce", NONCE),
                ("x-acs-content-sha256", ali::EMPTY_SHA256),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            let (canonical_headers, signed) = ali::v3_canonical_headers(&headers);
            let request = ali::v3_canonical_request(
                "POST",
                "/",
                &canonical_query,
                &canonical_headers,
                &signed,
                ali::EMPTY_SHA256,
            );
            let string_to_sign = ali::v3_string_to_sign(&request);
            let signature = ali::v3_signature(SECRET, &string_to_sign);
            ali::v3_authorization("LTAI5tBenchKeyId", &signed, &signature)
        });
    }

    #[divan::bench]
    fn tencent_tc3(bencher: Bencher) {
        let payload = br#"{"InstanceId":"ckafka-sim0001","Group":"payments-settlement-consumer-00042","Offset":0,"Limit":50}"#;
        let headers = [
            ("content-type", "application/json; charset=utf-8"),
            ("host", "ckafka.tencentcloudapi.com"),
            ("x-tc-action", "describegroupoffsets"),
        ];
        bencher.bench(|| {
            tc::sign(
                &tc::Request {
                    method: "POST",
                    headers: &headers,
                    payload: divan::black_box(payload),
                    timestamp: NOW,
                    service: "ckafka",
                },
                "AKIDBenchSecretId",
                SECRET,
            )
            .expect("a valid time")
        });
    }
}
