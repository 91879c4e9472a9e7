"""Spark with the s3a connector (hadoop-aws 3.3.1) against Strata: Parquet written, read back,
appended, overwritten and listed, with the default (rename-based) file committer and with
s3a's magic committer; over HTTPS, and through a worker's own S3 port. Run by `make test-spark`,
which installs pyspark."""

import importlib.util
import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.spark

ROWS = 3000


def jars():
    spec = importlib.util.find_spec("sagemaker_pyspark")
    assert spec is not None, "make test-spark installs sagemaker_pyspark for its hadoop-aws jars"
    folder = Path(spec.origin).parent / "jars"
    return ",".join(str(folder / j) for j in ("hadoop-aws-3.3.1.jar", "aws-java-sdk-bundle-1.11.901.jar"))


@pytest.fixture(scope="module")
def spark(strata):
    from pyspark.sql import SparkSession

    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    b = (SparkSession.builder.master("local[2]").appName("strata-s3a")
         .config("spark.jars", jars())
         .config("spark.ui.enabled", "false")
         .config("spark.sql.shuffle.partitions", "4"))
    for k, v in {
        "fs.s3a.endpoint": strata.endpoint,
        "fs.s3a.path.style.access": "true",
        "fs.s3a.connection.ssl.enabled": "false",
        "fs.s3a.access.key": strata.access_key,
        "fs.s3a.secret.key": strata.secret_key,
        "fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "fs.s3a.attempts.maximum": "1",
        "fs.s3a.retry.limit": "1",
        "fs.s3a.committer.magic.enabled": "true",
    }.items():
        b = b.config("spark.hadoop." + k, v)
    session = b.getOrCreate()
    strata.client().create_bucket(Bucket="spark-" + strata.mode)
    yield session
    session.stop()


def frame(spark, start):
    return spark.range(start, start + ROWS).selectExpr("id", "id * 3 AS triple", "concat('row-', id) AS name")


def check(spark, path, ids):
    df = spark.read.parquet(path)
    got = sorted(r.id for r in df.select("id").collect())
    assert got == sorted(ids)
    assert df.selectExpr("sum(triple)").collect()[0][0] == 3 * sum(ids)


def test_parquet_write_read_append_overwrite(strata, spark):
    s3 = strata.client()
    path = f"s3a://spark-{strata.mode}/tables/plain"
    frame(spark, 0).repartition(3).write.mode("overwrite").parquet(path)
    check(spark, path, range(ROWS))
    frame(spark, ROWS).write.mode("append").parquet(path)
    check(spark, path, range(2 * ROWS))
    frame(spark, 10 * ROWS).write.mode("overwrite").parquet(path)
    check(spark, path, range(10 * ROWS, 11 * ROWS))
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=f"spark-{strata.mode}", Prefix="tables/plain/")["Contents"]]
    assert "tables/plain/_SUCCESS" in keys
    assert any(k.endswith(".parquet") for k in keys)
    assert not any("_temporary" in k for k in keys), keys
    # Listing through Hadoop's FileSystem API.
    jvm = spark._jvm
    fs = jvm.org.apache.hadoop.fs.FileSystem.get(jvm.java.net.URI(path), spark._jsc.hadoopConfiguration())
    names = [s.getPath().getName() for s in fs.listStatus(jvm.org.apache.hadoop.fs.Path(path))]
    assert "_SUCCESS" in names and len([n for n in names if n.endswith(".parquet")]) >= 1


def test_magic_committer(strata, spark):
    """The magic committer through Hadoop's committer factory. Spark SQL writes cannot bind it
    without the spark-hadoop-cloud module, which no package here ships, so this goes through
    the RDD API (FileOutputFormat asks the factory for the s3a committer)."""
    bucket = f"spark-{strata.mode}"
    path = f"s3a://{bucket}/tables/magic"
    conf = spark._jsc.hadoopConfiguration()
    conf.set("fs.s3a.committer.name", "magic")
    conf.set("mapreduce.outputcommitter.factory.scheme.s3a", "org.apache.hadoop.fs.s3a.commit.S3ACommitterFactory")
    lines = [f"line-{i}" for i in range(ROWS)]
    try:
        spark.sparkContext.parallelize(lines, 3).map(lambda x: (None, x)).saveAsNewAPIHadoopFile(
            path, "org.apache.hadoop.mapreduce.lib.output.TextOutputFormat",
            keyClass="org.apache.hadoop.io.NullWritable", valueClass="org.apache.hadoop.io.Text")
    finally:
        conf.unset("fs.s3a.committer.name")
        conf.unset("mapreduce.outputcommitter.factory.scheme.s3a")
    assert sorted(r.value for r in spark.read.text(path).collect()) == sorted(lines)
    s3 = strata.client()
    success = s3.get_object(Bucket=bucket, Key="tables/magic/_SUCCESS")["Body"].read()
    # The S3A committers write a JSON _SUCCESS file naming the committer; the classic one is empty.
    assert b"MagicS3GuardCommitter" in success or b"magic" in success.lower(), success[:300]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="tables/magic")["Contents"]]
    assert not any("__magic" in k for k in keys), keys
    assert len([k for k in keys if "part-" in k]) == 3, keys
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)


@pytest.fixture(scope="module")
def https_local(tmp_path_factory):
    from tls_pki import Pki, start_https_local

    tmp = tmp_path_factory.mktemp("spark-tls")
    pki = Pki(tmp / "pki")
    c = start_https_local(tmp, pki)
    c.truststore = tmp / "truststore.jks"
    import subprocess
    subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "strata-test-ca", "-file", str(pki.ca_path),
                    "-keystore", str(c.truststore), "-storepass", "changeit", "-storetype", "JKS"],
                   check=True, capture_output=True, timeout=60)
    c.pki = pki
    yield c
    c.stop_all()


def test_parquet_over_https_with_the_ca_in_a_java_truststore(https_local):
    """s3a with fs.s3a.connection.ssl.enabled=true against `strata local` on HTTPS, trusting the
    test CA through javax.net.ssl.trustStore (set before s3a makes its first TLS connection)."""
    from pyspark.sql import SparkSession

    c = https_local
    props = f"-Djavax.net.ssl.trustStore={c.truststore} -Djavax.net.ssl.trustStorePassword=changeit"
    active = SparkSession.getActiveSession()
    spark = active or (SparkSession.builder.master("local[2]").appName("strata-s3a-tls")
                       .config("spark.jars", jars()).config("spark.ui.enabled", "false")
                       .config("spark.sql.shuffle.partitions", "4")
                       .config("spark.driver.extraJavaOptions", props).getOrCreate())
    system = spark._jvm.java.lang.System
    system.setProperty("javax.net.ssl.trustStore", str(c.truststore))
    system.setProperty("javax.net.ssl.trustStorePassword", "changeit")
    bucket = "spark-https"
    conf = spark._jsc.hadoopConfiguration()
    for k, v in {"endpoint": c.endpoint, "connection.ssl.enabled": "true", "path.style.access": "true",
                 "access.key": c.access_key, "secret.key": c.secret_key,
                 "aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
                 "attempts.maximum": "1", "retry.limit": "1"}.items():
        conf.set(f"fs.s3a.bucket.{bucket}.{k}", v)
    try:
        import boto3
        from botocore.config import Config
        s3 = boto3.client("s3", endpoint_url=c.endpoint, aws_access_key_id=c.access_key,
                          aws_secret_access_key=c.secret_key, region_name="us-east-1", verify=str(c.pki.ca_path),
                          config=Config(s3={"addressing_style": "path"}))
        s3.create_bucket(Bucket=bucket)
        path = f"s3a://{bucket}/tables/tls"
        frame(spark, 0).repartition(2).write.mode("overwrite").parquet(path)
        check(spark, path, range(ROWS))
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="tables/tls/")["Contents"]]
        assert "tables/tls/_SUCCESS" in keys and any(k.endswith(".parquet") for k in keys), keys
    finally:
        if active is None:
            spark.stop()


@pytest.fixture(scope="module")
def worker_s3(tmp_path_factory):
    from conftest import start_cluster

    c = start_cluster(tmp_path_factory.mktemp("spark-worker-s3"), worker_s3=True)
    yield c
    c.stop_all()


def test_parquet_through_a_workers_own_s3(worker_s3):
    """s3a pointed at a worker's S3 port (`--s3-listen`, the Helm chart's worker-s3 Service):
    a table written and read there is the same one a gateway of the cluster lists."""
    from pyspark.sql import SparkSession

    c = worker_s3
    active = SparkSession.getActiveSession()
    spark = active or (SparkSession.builder.master("local[2]").appName("strata-s3a-worker")
                       .config("spark.jars", jars()).config("spark.ui.enabled", "false")
                       .config("spark.sql.shuffle.partitions", "4").getOrCreate())
    bucket = "spark-worker-s3"
    conf = spark._jsc.hadoopConfiguration()
    for k, v in {"endpoint": c.endpoints[0], "connection.ssl.enabled": "false", "path.style.access": "true",
                 "access.key": c.access_key, "secret.key": c.secret_key,
                 "aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
                 "attempts.maximum": "1", "retry.limit": "1"}.items():
        conf.set(f"fs.s3a.bucket.{bucket}.{k}", v)
    try:
        c.client().create_bucket(Bucket=bucket)
        path = f"s3a://{bucket}/tables/local"
        frame(spark, 0).repartition(3).write.mode("overwrite").parquet(path)
        check(spark, path, range(ROWS))
        frame(spark, ROWS).write.mode("append").parquet(path)
        check(spark, path, range(2 * ROWS))
        through_gateway = c.client(c.endpoints[1])
        keys = [o["Key"] for o in through_gateway.list_objects_v2(Bucket=bucket, Prefix="tables/local/")["Contents"]]
        assert "tables/local/_SUCCESS" in keys and len([k for k in keys if k.endswith(".parquet")]) >= 4, keys
        assert not any("_temporary" in k for k in keys), keys
        ops = {json.loads(line)["op"] for line in c.access_log.read_text().splitlines() if line.strip()}
        assert {"PutObject", "GetObject", "ListObjectsV2"} <= ops, ops
    finally:
        if active is None:
            spark.stop()
