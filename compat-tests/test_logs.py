"""What a process writes to a log file: no terminal colour codes, and no line per request at the
default level (a line per request cost a third of a small GET); slow or failed requests only."""

import time


def test_log_file_has_no_colour_codes_and_no_line_per_request(strata, s3, bucket):
    for i in range(20):
        s3.put_object(Bucket=bucket, Key=f"log/{i}", Body=b"x")
        s3.get_object(Bucket=bucket, Key=f"log/{i}")["Body"].read()
    time.sleep(0.2)
    name = "local" if strata.mode == "local" else "gateway1"
    text = (strata.logs / f"{name}.log").read_text()
    assert "\x1b[" not in text
    assert f"/{bucket}/log/" not in text
    assert "serving S3" in text
