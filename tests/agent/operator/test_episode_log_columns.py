"""``episodes.csv`` records how an operator's episode ended; a file of an older rill reads back and
gains the new columns when appended to, its rows kept."""

from __future__ import annotations

from agent.actor.episodes import FIELDS, EpisodeLog, EpisodeRecord, read_episodes

OLD_HEADER = "step,seq,episode,return,length,success,policy_version,wall_time\n"


def test_outcome_columns_round_trip_and_old_files_are_upgraded(tmp_path):
    path = tmp_path / "episodes.csv"
    path.write_text(OLD_HEADER + "10,10,1,2.5,10,1,3,1.5\n")
    (old,) = read_episodes(path)
    assert old.ret == 2.5 and old.success and old.outcome is None and old.takeovers is None
    log = EpisodeLog(path)
    log.append(EpisodeRecord(25, 2, 1.0, 15, 3.0, seq=25, success=True, policy_version=4, outcome="success",
                             ended_by="operator", takeovers=2, intervened_steps=7))
    log.append(EpisodeRecord(40, 3, 0.0, 15, 4.0, seq=40, outcome="stopped", ended_by="node_stopped",
                             takeovers=0, intervened_steps=0))
    log.close()
    assert path.read_text().splitlines()[0] == ",".join(FIELDS)
    first, second, third = read_episodes(path)
    assert first == old
    assert (second.outcome, second.ended_by, second.takeovers, second.intervened_steps) == (
        "success", "operator", 2, 7)
    assert (third.outcome, third.ended_by, third.success) == ("stopped", "node_stopped", None)
