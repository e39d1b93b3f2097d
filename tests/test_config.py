import pytest

from crnn.config import ConfigError, config_from_dict, load_config, parse_overrides

from .conftest import ROOT

MV3 = ROOT / "configs" / "rec" / "rec_mv3_none_bilstm_ctc.yml"

# PaddleOCR's own rec_mv3_none_bilstm_ctc.yml as a PaddleOCR user has it (LMDB paths and all).
PADDLE_MV3 = """
Global:
  use_gpu: true
  epoch_num: 72
  log_smooth_window: 20
  print_batch_step: 10
  save_model_dir: ./output/rec/mv3_none_bilstm_ctc/
  save_epoch_step: 3
  eval_batch_step: [0, 2000]
  cal_metric_during_train: True
  pretrained_model:
  checkpoints:
  save_inference_dir:
  use_visualdl: False
  infer_img: doc/imgs_words_en/word_10.png
  character_dict_path:
  max_text_length: 25
  infer_mode: False
  use_space_char: False
  save_res_path: ./output/rec/predicts_mv3_none_bilstm_ctc.txt
Optimizer:
  name: Adam
  beta1: 0.9
  beta2: 0.999
  lr:
    learning_rate: 0.0005
  regularizer:
    name: 'L2'
    factor: 0
Architecture:
  model_type: rec
  algorithm: CRNN
  Transform:
  Backbone:
    name: MobileNetV3
    scale: 0.5
    model_name: large
  Neck:
    name: SequenceEncoder
    encoder_type: rnn
    hidden_size: 96
  Head:
    name: CTCHead
    fc_decay: 0
Loss:
  name: CTCLoss
PostProcess:
  name: CTCLabelDecode
Metric:
  name: RecMetric
  main_indicator: acc
Train:
  dataset:
    name: LMDBDataSet
    data_dir: ./train_data/data_lmdb_release/training/
    transforms:
      - DecodeImage:
          img_mode: BGR
          channel_first: False
      - CTCLabelEncode:
      - RecResizeImg:
          image_shape: [3, 32, 100]
      - KeepKeys:
          keep_keys: ['image', 'label', 'length']
  loader:
    shuffle: False
    batch_size_per_card: 256
    drop_last: True
    num_workers: 8
Eval:
  dataset:
    name: LMDBDataSet
    data_dir: ./train_data/data_lmdb_release/validation/
    transforms:
      - DecodeImage:
          img_mode: BGR
          channel_first: False
      - CTCLabelEncode:
      - RecResizeImg:
          image_shape: [3, 32, 100]
      - KeepKeys:
          keep_keys: ['image', 'label', 'length']
  loader:
    shuffle: False
    drop_last: False
    batch_size_per_card: 256
    num_workers: 4
"""


def test_paddleocr_yaml_loads_unchanged(tmp_path):
    p = tmp_path / "rec_mv3_none_bilstm_ctc.yml"
    p.write_text(PADDLE_MV3)
    cfg = load_config(p)
    assert cfg.Architecture.Backbone.name == "MobileNetV3"
    assert cfg.Architecture.Neck.params["hidden_size"] == 96
    assert cfg.Optimizer.lr.name == "Const" and cfg.Optimizer.lr.learning_rate == 0.0005
    assert cfg.Train is not None and cfg.Train.dataset.name == "LMDBDataSet"
    assert cfg.Train.dataset.transforms.image_shape == [3, 32, 100]
    assert cfg.Train.loader.batch_size_per_card == 256 and cfg.Train.loader.drop_last
    assert cfg.Global.eval_batch_step == [0, 2000]
    assert cfg.Global.pretrained_model is None


def test_repo_configs_load():
    for name in ("rec_mv3_none_bilstm_ctc", "rec_r34_vd_none_bilstm_ctc"):
        cfg = load_config(ROOT / "configs" / "rec" / f"{name}.yml")
        assert cfg.Optimizer.lr.learning_rate == 0.0005
    assert load_config(ROOT / "configs" / "train" / "crnn_mv3_en.yml").Global.ema_decay == 0.999
    for path in sorted((ROOT / "configs").rglob("*.yml")):
        load_config(path)
    r4 = load_config(ROOT / "configs" / "train" / "crnn_mv3_en_r4.yml")  # _BASE_ r3 -> r2
    assert (r4.Global.seed, r4.Optimizer.lr.warmup_steps, r4.Global.ema_decay) == (4096, 100, 0.999)


@pytest.mark.parametrize(("override", "key"), [
    ("Global.epoch_nums=3", "Global.epoch_nums"),
    ("Architecture.Backbone.layers=34", "Architecture.Backbone.layers"),
    ("Optimizer.lr.warmup_epochs=1", "Optimizer.lr.warmup_epochs"),
    ("Bogus.x=1", "Bogus"),
])
def test_unknown_or_misplaced_key_is_named(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(MV3, [override])


def test_unsupported_values_are_rejected():
    with pytest.raises(ConfigError, match="Backbone.name"):
        load_config(MV3, ["Architecture.Backbone.name=ResNet_vd"])
    with pytest.raises(ConfigError, match="Transform"):
        load_config(MV3, ["Architecture.Transform={name: TPS}"])
    with pytest.raises(ConfigError, match="use_visualdl"):
        load_config(MV3, ["Global.use_visualdl=true"])
    with pytest.raises(ConfigError, match="expected an integer"):
        load_config(MV3, ["Global.epoch_num=many"])


def test_unknown_transform_is_named():
    data = {"Train": {"dataset": {"transforms": [{"DecodeImage": None}, {"SVTRRecAug": None}]}}}
    with pytest.raises(ConfigError, match="SVTRRecAug"):
        config_from_dict(data)


def test_overrides_are_yaml_typed():
    assert parse_overrides(["A.b=1", "A.c=[1, 2]", "A.d=true", "A.e=x=y", "A.f="]) == [
        ("A.b", 1), ("A.c", [1, 2]), ("A.d", True), ("A.e", "x=y"), ("A.f", None)]
    cfg = load_config(MV3, ["Global.max_steps=7", "Train.loader.num_workers=0", "Optimizer.lr.name=Cosine"])
    assert cfg.Global.max_steps == 7 and cfg.Optimizer.lr.name == "Cosine"
    assert cfg.Train is not None and cfg.Train.loader.num_workers == 0


def test_rec_aug_is_parsed():
    data = {"Train": {"dataset": {"transforms": [{"RecAug": {"tia_prob": 0.1}}]}}}
    cfg = config_from_dict(data)
    assert cfg.Train is not None and cfg.Train.dataset.transforms.rec_aug is not None
    assert cfg.Train.dataset.transforms.rec_aug.tia_prob == 0.1
    with pytest.raises(ConfigError, match="tia_pro"):
        config_from_dict({"Train": {"dataset": {"transforms": [{"RecAug": {"tia_pro": 0.1}}]}}})


def test_roundtrip_through_dict():
    cfg = load_config(MV3)
    assert config_from_dict(cfg.to_dict()) == cfg


def test_base_file_is_merged_under_the_child(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "a.yml").write_text(MV3.read_text())
    (tmp_path / "b.yml").write_text(
        "_BASE_: base/a.yml\n"
        "Global: {epoch_num: 3}\n"
        "Optimizer: {lr: {learning_rate: 0.001}}\n"
        "Train: {dataset: {label_file_list: [x.tsv]}}\n")
    (tmp_path / "c.yml").write_text("_BASE_: [b.yml]\nGlobal: {seed: 7}\n")
    base, cfg = load_config(MV3), load_config(tmp_path / "c.yml")
    assert (cfg.Global.epoch_num, cfg.Global.seed) == (3, 7)
    assert cfg.Optimizer.lr.learning_rate == 0.001
    assert cfg.Optimizer.lr.name == base.Optimizer.lr.name  # sibling keys kept
    assert cfg.Train is not None and cfg.Train.dataset.label_file_list == ["x.tsv"]  # lists replace
    assert cfg.Architecture == base.Architecture and cfg.Eval == base.Eval


def test_base_errors_name_the_file(tmp_path):
    (tmp_path / "a.yml").write_text("_BASE_: b.yml\n")
    (tmp_path / "b.yml").write_text("_BASE_: a.yml\n")
    with pytest.raises(ConfigError, match="_BASE_ cycle"):
        load_config(tmp_path / "a.yml")
    (tmp_path / "c.yml").write_text("_BASE_: missing.yml\n")
    with pytest.raises(FileNotFoundError, match=r"missing\.yml not found \(named by _BASE_ in .*c\.yml\)"):
        load_config(tmp_path / "c.yml")
    (tmp_path / "d.yml").write_text(f"_BASE_: {MV3}\nGlobal: {{epoch_nums: 3}}\n")
    with pytest.raises(ConfigError, match=r"d\.yml: unknown config key 'Global\.epoch_nums'"):
        load_config(tmp_path / "d.yml")


def test_string_override_keeps_its_text():
    digits = "0" * 64
    cfg = load_config(MV3, [f"Global.pretrained_sha256={digits}", "PostProcess.allow=0123456789",
                            "PostProcess.block='x y'"])
    assert cfg.Global.pretrained_sha256 == digits  # not "0" (YAML reads the digits as the int 0)
    assert cfg.PostProcess.allow == "0123456789" and cfg.PostProcess.block == "x y"  # quotes still unquote
    assert load_config(MV3, ["Global.max_steps=7"]).Global.max_steps == 7  # other types stay YAML-typed


def test_number_for_a_string_key_in_yaml_is_refused(tmp_path):
    (tmp_path / "a.yml").write_text(f"_BASE_: {MV3}\nPostProcess: {{allow: 0123}}\n")  # YAML 1.1: octal 83
    with pytest.raises(ConfigError, match=r"PostProcess\.allow: got the number 83; quote it"):
        load_config(tmp_path / "a.yml")


def test_keys_without_effect_are_named_in_one_warning(tmp_path, caplog):
    p = tmp_path / "paddle.yml"
    p.write_text(PADDLE_MV3)
    with caplog.at_level("WARNING", logger="crnn.config"):
        load_config(p, ["Optimizer.momentum=0.5", "PostProcess.beam_width=4"])
    (msg,) = [r.getMessage() for r in caplog.records]
    for key in ("Global.infer_img", "Global.save_res_path", "Optimizer.momentum (not read by Adam)",
                "PostProcess.beam_width (not read by greedy)"):
        assert key in msg
    assert "save_inference_dir" not in msg  # empty in PaddleOCR's file: nothing to warn about
    stored = load_config(p).to_dict()
    caplog.clear()
    with caplog.at_level("WARNING", logger="crnn.config"):
        config_from_dict(stored)  # a checkpoint's stored config loads quietly
    assert not caplog.records


def test_fixed_keys_take_only_their_values():
    with pytest.raises(ConfigError, match=r"Architecture\.Neck\.encoder_type: 'lstm' is not supported"):
        load_config(MV3, ["Architecture.Neck.encoder_type=lstm"])
    with pytest.raises(ConfigError, match=r"channel_first: True is not supported"):
        config_from_dict({"Train": {"dataset": {"transforms": [{"DecodeImage": {"channel_first": True}}]}}})
    assert load_config(MV3, ["Architecture.Backbone.scale=1"]).Architecture.Backbone.params["scale"] == 1.0
