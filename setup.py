import re

from setuptools import find_packages, setup

VERSION = re.search(r'__version__ = "(.+)"', open("tap_fullstory/__init__.py").read()).group(1)

setup(
    name="tap-fullstory",
    version=VERSION,
    description="Singer tap for FullStory Data Export bundles",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["tap_fullstory", "tap_fullstory.*"]),
    package_data={"tap_fullstory": ["schemas/*.json"]},
    install_requires=[
        "singer-python==6.8.0",
        "requests==2.34.2",
        "urllib3==2.8.0",  # read1, for the download limits
        "backoff==2.2.1",
        "ciso8601==2.4.1",
        "ijson==3.6.0",
        "orjson==3.13.0",
    ],
    extras_require={"test": ["pytest==9.2.0", "responses==0.26.3", "pyyaml==6.0.4"]},
    entry_points={
        "console_scripts": [
            "tap-fullstory=tap_fullstory.launch:main",
            "tap-fullstory-sandbox=tap_fullstory.sandbox.launch:main",
        ]
    },
)
