//! Smoke test of the real s3s-fs server: put and get an object with the aws CLI.

use std::process::Command;

use terrarium_testkit::{S3Server, require};

fn aws(s3: &S3Server, args: &[&str]) -> std::process::Output {
    Command::new(require("aws"))
        .args(["--endpoint-url", &s3.endpoint()])
        .args(args)
        .envs(s3.aws_env())
        .output()
        .expect("run aws")
}

#[test]
fn put_then_get_an_object_with_the_aws_cli() {
    let s3 = S3Server::start();
    let work = tempfile::tempdir().expect("tempdir");
    let source = work.path().join("in.bin");
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&source, &payload).expect("write payload");

    let target = format!("s3://{}/dir/object.bin", s3.bucket());
    let put = aws(&s3, &["s3", "cp", "--only-show-errors", source.to_str().expect("utf-8"), &target]);
    assert!(put.status.success(), "put: {}", String::from_utf8_lossy(&put.stderr));
    assert_eq!(std::fs::read(s3.data_dir().join(s3.bucket()).join("dir/object.bin")).expect("stored file"), payload);

    let back = work.path().join("out.bin");
    let get = aws(&s3, &["s3", "cp", "--only-show-errors", &target, back.to_str().expect("utf-8")]);
    assert!(get.status.success(), "get: {}", String::from_utf8_lossy(&get.stderr));
    assert_eq!(std::fs::read(&back).expect("downloaded file"), payload);

    let listing = aws(&s3, &["s3", "ls", &format!("s3://{}/dir/", s3.bucket())]);
    assert!(String::from_utf8_lossy(&listing.stdout).contains("object.bin"));

    // Wrong credentials are refused: the server really checks SigV4.
    let denied = Command::new(require("aws"))
        .args(["--endpoint-url", &s3.endpoint(), "s3", "ls", &format!("s3://{}/", s3.bucket())])
        .envs(s3.aws_env())
        .env("AWS_SECRET_ACCESS_KEY", "wrong")
        .output()
        .expect("run aws");
    assert!(!denied.status.success());

    let port = s3.port();
    drop(s3);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "server killed on drop");
}
