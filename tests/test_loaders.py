"""Loaders read the real upstream formats, fail clearly, and download with a checksum."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest

import tfrec
from tfrec.data import loaders
from tfrec.data.loaders import AUDIO_FEATURES
from tfrec.errors import DataError, DatasetNotFoundError


# === Real data in ../shared/data ===
def test_movielens_100k_counts(ml100k) -> None:
    assert (len(ml100k), ml100k.num_users, ml100k.num_items) == (100_000, 943, 1682)
    assert ml100k.frame["rating"].between(1, 5).all()
    assert len(ml100k.items) == 1682 and len(ml100k.users) == 943
    toy = ml100k.items.loc["1"]
    assert toy["title"] == "Toy Story (1995)"
    assert toy["genres"] == "Animation|Children's|Comedy"
    assert toy["text"] == "Toy Story (1995) Animation Children's Comedy"
    assert ml100k.users.loc["1", "occupation"] == "technician"
    assert sorted(ml100k.folds) == ["u1", "u2", "u3", "u4", "u5", "ua", "ub"]


def test_movielens_100k_latin1_titles(ml100k) -> None:
    assert any("é" in t for t in ml100k.items["title"])


def test_movielens_latest_small_counts(ml_latest_dir) -> None:
    data = tfrec.datasets.load("movielens-latest-small", ml_latest_dir)
    assert (len(data), data.num_users, data.num_items) == (100_836, 610, 9724)
    assert len(data.items) == 9742
    assert data.frame["rating"].min() == 0.5
    assert "tags" in data.items.columns
    assert data.items.loc["1", "title"] == "Toy Story (1995)"
    assert "pixar" in data.items.loc["1", "text"]


def test_citeulike_t_counts(citeulike_dir) -> None:
    data = tfrec.datasets.load("citeulike-t", citeulike_dir)
    assert (len(data), data.num_users, data.num_items) == (134_860, 7947, 25_584)
    assert len(data.items) == 25_975
    assert not data.has_ratings and not data.has_timestamps
    assert len(data.items.loc["0", "text"].split()) > 10
    train, test = data.folds["P10_1"]()
    assert train.num_users == 2841
    assert set(test.user_ids) <= set(train.user_ids)
    assert train.frame.groupby("user_id").size().eq(10).all()
    assert len(train) + len(test) == 109_871
    train, test = data.folds["P1_1"]()
    assert len(train) + len(test) == 134_860


def test_tfrec_data_dir_root(ml100k_dir, monkeypatch) -> None:
    monkeypatch.setenv("TFREC_DATA_DIR", str(ml100k_dir.parent))
    assert len(tfrec.datasets.load("movielens-100k")) == 100_000
    assert tfrec.datasets.locations()["movielens-100k"] == str(ml100k_dir)


def test_lastfm_2k_audio_counts_match_its_provenance(lastfm_dir) -> None:
    data = tfrec.datasets.load("lastfm-2k-audio", lastfm_dir)
    assert (len(data), data.num_users, data.num_items) == (92_834, 1_892, 17_632)
    assert data.has_weights and not data.has_ratings and not data.has_timestamps
    weight = data.frame["weight"]
    assert (weight.min(), weight.median(), weight.max()) == (1, 260, 352_698)
    items = data.items
    with_audio = items.index[items["has_audio"]]
    assert len(with_audio) == 1_938 and len([c for c in items.columns if c.startswith("audio_")]) == 26
    played = data.frame["item_id"].isin(with_audio)
    assert played.sum() == 53_055
    assert round(weight[played].sum() / weight.sum(), 3) == 0.684
    assert items.loc[~items["has_audio"], "audio_energy"].isna().all()
    assert items.loc[items["title"] == "Britney Spears", "has_audio"].item()


def test_lastfm_2k_audio_upstream_format(tmp_path) -> None:
    """The exact upstream quirks: CRLF plays, UTF-8 artists with quotes and accents, an
    ISO-8859-1 readme (not read), artist names joined after normalization."""
    hetrec, spotify = tmp_path / "hetrec2011-lastfm-2k", tmp_path / "spotify_playlists_audio_features"
    write(hetrec / "user_artists.dat", "userID\tartistID\tweight\r\n2\t51\t13883\r\n2\t52\t5\r\n3\t53\t1\r\n")
    write(hetrec / "artists.dat", "id\tname\turl\tpictureURL\n51\tBeyoncé\thttp://x\thttp://y\n"
          '52\tThe  Beatles\thttp://x\t\n53\tGuns "N" Roses\thttp://x\thttp://y\n')  # fmt: skip
    write(hetrec / "readme.txt", "Last.fm, Cantador et al.\r\nAmélie\r\n", encoding="latin-1")
    header = ",".join([*AUDIO_FEATURES[:11], "type", "id", "uri", "track_href", "analysis_url",
                       "duration_ms", "time_signature", "unique_track"])  # fmt: skip

    def track(energy: float, name: str) -> str:
        return ",".join(["0.5", str(energy), "1", "-5", "1", *["0.1"] * 5, "120", "audio_features",
                         "i", "u", "h", "a", "200000", "4", name])  # fmt: skip

    rows = [track(0.2, "BEYONCE - Halo"), track(0.6, "Beyonce - Crazy In Love"), track(0.9, "beatles - Help!"),
            track(0.4, "Unplayed Artist - Song")]  # fmt: skip
    write(spotify / "audio_features_raw.csv", header + "\n" + "\n".join(rows) + "\n")
    data = tfrec.datasets.load("lastfm-2k-audio", tmp_path)
    assert list(data.frame["weight"]) == [13883.0, 5.0, 1.0]
    items = data.items
    assert list(items["title"]) == ["Beyoncé", "The  Beatles", 'Guns "N" Roses']
    assert list(items["has_audio"]) == [True, True, False]
    assert items.loc["51", "audio_energy"] == pytest.approx(0.4) and items.loc[
        "51", "audio_energy_std"
    ] == pytest.approx(0.2)
    assert items.loc["52", "audio_energy"] == pytest.approx(0.9) and items.loc["52", "tracks_with_audio"] == 1
    assert np.isnan(items.loc["53", "audio_energy"])
    write(hetrec / "artists.dat", "id\tname\turl\tpictureURL\n51\tBeyonc\xe9\tx\ty\n", encoding="latin-1")
    with pytest.raises(DataError, match=r"artists.dat: not valid utf-8 text .* line 2"):
        tfrec.datasets.load("lastfm-2k-audio", tmp_path)


# === Formats of datasets not in shared (small files in the exact upstream format) ===
def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def test_movielens_1m_format(tmp_path) -> None:
    write(tmp_path / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    write(tmp_path / "movies.dat", "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
          "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
          "2::Amélie (2001)::Comedy|Romance\n", encoding="latin-1")  # fmt: skip
    write(tmp_path / "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n")
    data = tfrec.datasets.load("movielens-1m", tmp_path)
    assert (len(data), data.num_users, data.num_items) == (3, 2, 2)
    assert data.frame["timestamp"].iloc[0] == 978300760
    assert data.items.loc["2", "title"] == "Amélie (2001)"
    assert data.items.loc["661", "text"] == "James and the Giant Peach (1996) Animation Children's Musical"
    assert data.users.loc["2", "age"] == 56


@pytest.mark.parametrize("name", ["movielens-20m", "movielens-25m", "movielens-latest-small"])
def test_movielens_csv_format(tmp_path, name) -> None:
    write(
        tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n1,29,4.0,1112484676\n"
    )
    write(tmp_path / "movies.csv", 'movieId,title,genres\n2,"Jumanji, The (1995)",Adventure|Children\n'
          "29,City of Lost Children (1995),(no genres listed)\n")  # fmt: skip
    write(tmp_path / "tags.csv", "userId,movieId,tag,timestamp\n1,2,Board Game,1\n3,2,board game,2\n")
    data = tfrec.datasets.load(name, tmp_path)
    assert len(data) == 2 and data.name == name
    assert data.items.loc["2", "title"] == "Jumanji, The (1995)"
    assert data.items.loc["2", "text"] == "Jumanji, The (1995) Adventure Children board game"
    assert data.items.loc["29", "genres"] == ""


def test_goodbooks_format(tmp_path) -> None:
    write(tmp_path / "ratings.csv", "user_id,book_id,rating\n1,258,5\n2,4081,4\n2,258,5\n2,258,3\n")
    write(tmp_path / "books.csv", "book_id,goodreads_book_id,best_book_id,work_id,books_count,isbn,isbn13,"
          "authors,original_publication_year,original_title,title,language_code\n"
          '258,1232,1232,3209783,279,143039431,9.78014303943e+12,"Carlos Ruiz Zafón, Lucia Graves",'
          "2001,La sombra del viento,The Shadow of the Wind,eng\n"
          "4081,5,5,2402163,376,043965548X,9.78043965548e+12,J.K. Rowling,1999,x,Harry Potter,eng\n")  # fmt: skip
    write(tmp_path / "tags.csv", "tag_id,tag_name\n1,to-read\n2,fantasy\n")
    write(tmp_path / "book_tags.csv", "goodreads_book_id,tag_id,count\n1232,1,10\n5,2,30\n5,1,5\n")
    data = tfrec.datasets.load("goodbooks-10k", tmp_path)
    assert len(data) == 3  # the repeated (2, 258) pair keeps its latest rating
    assert data.frame.query("user_id == '2' and item_id == '258'")["rating"].item() == 3.0
    assert data.items.loc["4081", "text"] == "Harry Potter J.K. Rowling fantasy to read"
    assert data.items.loc["258", "authors"] == "Carlos Ruiz Zafón  Lucia Graves"


def test_citeulike_format_with_crlf_and_empty_lines(tmp_path) -> None:
    write(tmp_path / "users.dat", "2 0 1\n1 2\n")
    write(tmp_path / "mult.dat", "2 0:2 1:1\n1 1:1\n1 0:1\n")
    write(tmp_path / "vocabulary.dat", "deep\nlearning\n")
    write(tmp_path / "splits/P1/train_P1_1.dat", "\r\n1 2\r\n")
    write(tmp_path / "splits/P1/test_P1_1.dat", "\r\n\r\n")
    data = tfrec.datasets.load("citeulike-t", tmp_path)
    assert data.items.loc["0", "text"] == "deep deep learning"
    assert list(zip(data.frame.user_id, data.frame.item_id)) == [("0", "0"), ("0", "1"), ("1", "2")]
    with pytest.raises(DataError, match="no user-item pairs"):
        data.folds["P1_1"]()


# === Clear errors ===
def test_missing_folder_lists_expected_files(tmp_path) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        tfrec.datasets.load("movielens-100k", tmp_path / "nowhere")
    message = str(err.value)
    assert "['u.data', 'u.item']" in message and "TFREC_DATA_DIR" in message
    assert "https://files.grouplens.org/datasets/movielens/ml-100k.zip" in message
    assert isinstance(err.value, FileNotFoundError)


def test_unknown_dataset_name() -> None:
    with pytest.raises(
        DataError, match=r"unknown dataset 'netflix'; available: \['synthetic', 'movielens-100k'"
    ):
        tfrec.datasets.load("netflix")


@pytest.mark.parametrize(
    "content, message",
    [
        ("1\t2\t3\t881250949\n1\t5\n", "line(s) 2 lack field 'rating'"),
        ("1,2,3,881250949\n", "line(s) 1 lack field 'item_id'"),
        ("", "the file is empty"),
        ("1\t2\tfive\t881250949\n", "column 'rating' has non-numeric values at rows 0"),
        ("1\t2\t3\t88125\n1\t2\t3\t88125\n", "duplicate (user_id, item_id, timestamp) at rows 1"),
    ],
    ids=["truncated-line", "wrong-separator", "empty-file", "text-rating", "duplicate-rows"],
)
def test_malformed_ml100k(tmp_path, content, message) -> None:
    write(tmp_path / "u.data", content)
    write(
        tmp_path / "u.item",
        "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n",
    )
    with pytest.raises(DataError) as err:
        tfrec.datasets.load("movielens-100k", tmp_path)
    assert message in str(err.value)


def test_utf8_file_read_as_latin1_does_not_crash(tmp_path) -> None:
    write(tmp_path / "ratings.dat", "1::1::5::978300760\n")
    write(tmp_path / "movies.dat", "1::Amélie (2001)::Comedy\n", encoding="utf-8")
    data = tfrec.datasets.load("movielens-1m", tmp_path)
    assert data.items.loc["1", "title"] == "AmÃ©lie (2001)"  # latin-1, as upstream declares


def test_latin1_csv_where_utf8_is_expected(tmp_path) -> None:
    write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3.5,1\n")
    write(tmp_path / "movies.csv", "movieId,title,genres\n2,Amélie,Comedy\n", encoding="latin-1")
    with pytest.raises(DataError, match="movies.csv: not valid utf-8 text"):
        tfrec.datasets.load("movielens-latest-small", tmp_path)


# === Download against a local HTTP server ===
def _ml100k_zip(path: Path) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ml-100k/u.data", "1\t10\t4\t881250949\n2\t10\t3\t881250950\n")
        archive.writestr(
            "ml-100k/u.item",
            "10|Richard III (1995)|22-Jan-1996||http://x|0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|1|0\n",
        )
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_verifies_checksum_and_extracts(archive_server, tmp_path, monkeypatch) -> None:
    www, base = archive_server
    md5 = _ml100k_zip(www / "ml-100k.zip")
    spec = loaders.DATASETS["movielens-100k"]
    monkeypatch.setitem(loaders.DATASETS, "movielens-100k",
                        loaders.DatasetSpec(**{**spec.__dict__, "url": f"{base}/ml-100k.zip", "file_hash": md5}))  # fmt: skip
    target = tmp_path / "data" / "ml-100k"
    data = tfrec.datasets.load("movielens-100k", target, download=True)
    assert len(data) == 2 and data.items.loc["10", "genres"] == "Drama|War"
    assert sorted(p.name for p in target.iterdir()) == ["u.data", "u.item"]
    assert [p.name for p in target.parent.iterdir()] == ["ml-100k"]  # no temporary leftovers


def test_download_with_wrong_checksum_leaves_nothing(archive_server, tmp_path) -> None:
    www, base = archive_server
    _ml100k_zip(www / "ml-100k.zip")
    target = tmp_path / "data" / "ml-100k"
    spec = loaders.DATASETS["movielens-100k"]
    with pytest.raises(DataError, match="failed its checksum check"):
        tfrec.datasets.download("movielens-100k", target, url=f"{base}/ml-100k.zip")
    assert spec.file_hash == "0e33842e24a9c977be4e0107933c0723"
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_download_of_missing_url_fails_clearly(archive_server, tmp_path) -> None:
    _, base = archive_server
    with pytest.raises(DataError, match="download of .*/nothing.zip failed: .*404"):
        loaders.fetch_archive(f"{base}/nothing.zip", tmp_path / "x")
    assert not (tmp_path / "x").exists()
