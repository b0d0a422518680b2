"""Tell the user where the results are once `make run` ends."""

from pathlib import Path


def main(root: Path = Path(".")) -> None:
    wanted = {
        "Report": root / "results" / "report.html",
        "Leaderboard": root / "results" / "leaderboard.csv",
        "Resources per job": root / "results" / "resources" / "resources.csv",
        "Logs": root / "logs",
    }
    print("\nevosweep finished.")
    for label, path in wanted.items():
        state = "" if path.exists() else "  (not produced by this config)"
        print(f"  {label + ':':<19} {path.resolve()}{state}")


if __name__ == "__main__":
    main()
