from unkai.services.s3.service import S3

SERVICES = [S3]
