"""rill: ROS 2 ament_python package and pip-installable Python distribution."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "rill"
VIDEO = ["imageio>=2.30", "imageio-ffmpeg>=0.4"]
# video: rill eval --video is tested.
TEST = ["pytest>=8.0", "pytest-timeout>=2.2", "ruff>=0.5", *VIDEO]

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Embodied robot agent framework with online stream-x learning",
    packages=find_packages(include=["agent*", "hal*", "policies*", "learners*", "sim*"]),
    # The VLAs rill ships, pretrained here (docs/results/pretrain/): config, weights, tokenizer.
    package_data={"policies.vla": ["pretrained/*/*"], "policies.reward": ["pretrained/*/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.26",
        "torch==2.13.0",
        "numba>=0.60",  # the compiled stream-x update path (learners.streamx.fast)
        "gymnasium[mujoco]>=1.0",
        "mujoco>=3.1",
        "msgpack>=1.0",
        "safetensors>=0.4",
        "pyyaml>=6.0",
        "rich>=13.0",
        "tensorboard>=2.15",
        "matplotlib>=3.7",
        "psutil>=5.9",
        "pyzmq>=25.0",
        "pyarrow>=14.0",
        "crc32c>=2.4",
        "pillow>=10.0",
        "lmdb>=1.4",  # the replay cache's storage
        "zstandard>=0.22",  # camera-frame columns compressed on the link and in the caches
        "av>=15",  # PyAV: MP4 video of LeRobot datasets (agent.demos.video)
        "transformers>=5.23",  # the VLA backbone (policies.vla); built from configs, no hub access
        "tokenizers>=0.23",
    ],
    extras_require={
        "video": VIDEO,
        "test": TEST,
        "dev": [*TEST, "pyinstrument>=4.6"],
        "ray": ["ray>=2.9"],  # the Ray scheduler backend (hal.backends.ray)
        # Meta-World's own dependencies but MuJoCo: metaworld itself pins mujoco==3.3.0, so it is
        # installed with --no-deps on rill's MuJoCo (scripts/setup.sh; docs/results/metaworld.md says why).
        "metaworld": ["scipy>=1.4.1", *VIDEO],
    },
    zip_safe=False,  # the shipped VLAs are read from their directory
    entry_points={
        "console_scripts": [
            "rill = agent.cli:main",
            # ROS 2 nodes (installed under lib/rill by setup.cfg, where `ros2 run/launch` finds them).
            "agent_node = agent.ros.agent_node:main",
            "sim_node = agent.ros.sim_node:main",
            "learner_node = agent.ros.learner_node:main",
            "scripted_operator = agent.ros.scripted_operator:main",
        ],
        # Robot types and robot discovery (hal.registry); third-party packages add their own.
        "rill.robots": [
            "sim-mujoco = sim.robots:MujocoRobot",
            "sim-tabletop = sim.tabletop.robot:TabletopRobot",
            "sim-metaworld = sim.metaworld.robot:MetaWorldRobot",
            "ros2 = agent.ros.robot:Ros2Robot",
        ],
        "rill.discovery": [
            "sim = sim.robots:discover_simulated_robots",
            "ros2 = agent.ros.discovery:discover_ros2_robots",
        ],
    },
)
