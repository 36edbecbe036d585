#!/usr/bin/env bash
# First samples from the pretrained models shipped inside hsigen (seconds), then the whole chain,
# trained here on the embedded AVIRIS Indian Pines scene at tiny presets with short step counts.
# Run through `make demo` (which creates .venv first). Artifacts land in $DEMO_DIR; a rerun
# skips every stage whose inputs and config are unchanged ("up to date") and rebuilds the others.
set -euo pipefail
# Small models on a few cores: one OpenMP thread per process avoids oversubscription, which
# slowed training many times over whenever anything else was running (README: CPU threads).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
DEMO_DIR=${DEMO_DIR:-runs/demo}
mkdir -p "$DEMO_DIR"
# The demo owns $DEMO_DIR: a stage whose inputs or config changed since the last run (a newer hsigen,
# retrained pretrained models) replaces its old output instead of refusing it; a stage that is up to
# date is still skipped (--overwrite does not force a rebuild).
hsigen() { if [[ " $* " == *" --out "* ]]; then command hsigen "$@" --overwrite; else command hsigen "$@"; fi; }
step() { printf '\n== %s\n' "$*" >&2; }
start=$SECONDS

step "1. ingest the embedded Indian Pines scene: 48 bands 400-1000 nm, 32x32 patches, spatial train/val split"
hsigen ingest --example indian-pines --size 32 --stride 16 --val-fraction 0.25 --out "$DEMO_DIR/dataset"

step "1b. the pretrained models shipped inside hsigen (make pretrained trained them on this scene): samples in seconds"
hsigen pretrained
P="$DEMO_DIR/pretrained"
hsigen condition "$DEMO_DIR/dataset" --kinds hed,seg --split val --out "$P/conditions-val"   # held-out patches' maps
hsigen sample --ckpt pretrained:indian-pines-latent --conditions "$P/conditions-val" -n 8 --out "$P/latent-samples"
hsigen sample --ckpt pretrained:indian-pines-latent -n 8 --seed 1 --out "$P/latent-unconditional"
hsigen sample --ckpt pretrained:indian-pines-abundance -n 8 --size 32 --out "$P/abundance-samples"
hsigen sample --ckpt pretrained:indian-pines-joint -n 8 --out "$P/labelled-samples"
# The latent and labelled models decode every pixel through the scene's spectral manifold by default
# (unmix --method manifold; the labelled ones through the manifold of their generated class); the same
# samples raw, for comparison:
hsigen sample --ckpt pretrained:indian-pines-latent --conditions "$P/conditions-val" -n 8 \
    --spectral-manifold none --out "$P/latent-samples-raw"
hsigen sample --ckpt pretrained:indian-pines-joint -n 8 --spectral-manifold none --out "$P/labelled-samples-raw"
hsigen evaluate --real "$DEMO_DIR/dataset" --generated "$P/latent-samples" "$P/latent-samples-raw" \
    "$P/latent-unconditional" "$P/abundance-samples" "$P/labelled-samples" "$P/labelled-samples-raw" \
    --metrics spr_srec,spatial --out "$P/evaluation"
echo "pretrained samples and their report: $P/ (report: $P/evaluation/report.md); the rest of the demo trains the short chain itself" >&2

step "2. unmix: VCA endmembers + FCLS abundances (k=5)"
hsigen unmix "$DEMO_DIR/dataset" -k 5 --out "$DEMO_DIR/unmixing"

step "3. abundance-space diffusion (HUD projection, tiny preset)"
hsigen train-diffusion --space abundance --unmixing "$DEMO_DIR/unmixing" --preset tiny --steps 300 --crop 16 \
    --out "$DEMO_DIR/abundance-model"

step "4. sample 16 synthetic 48-band HSIs (25 DDIM steps), on the simplex by construction"
hsigen sample --ckpt "$DEMO_DIR/abundance-model" -n 16 --steps 25 --size 32 --out "$DEMO_DIR/abundance-samples"

step "5. a spectral pixel classifier for the evaluation's SD / spectral FID (the evaluation runs after step 8b)"
hsigen evaluate train-classifier "$DEMO_DIR/dataset" --preset tiny --out "$DEMO_DIR/classifier"

step "5b. downstream check (HSIGene Table 8): does adding the 16 samples help a denoiser on the held-out rows?"
# A small denoiser trained on real / real + synthetic / synthetic-only patches, seeds 0-2, sigma 0.2.
hsigen evaluate downstream --task denoise --real "$DEMO_DIR/dataset" --synthetic "$DEMO_DIR/abundance-samples" \
    --steps 200 --out "$DEMO_DIR/downstream-denoise"

step "6. HSIGene conditions of every patch (offline backends: hed, mlsd, sketch, seg, content, text)"
hsigen condition "$DEMO_DIR/dataset" --kinds hed,mlsd,sketch,seg,content,text --text farmland \
    --out "$DEMO_DIR/conditions"

step "7. spectral autoencoder (KL VAE, tiny) with its PCA baseline"
hsigen train-ae "$DEMO_DIR/dataset" --kind kl --preset tiny --steps 300 --model-config examples/demo-autoencoder.yaml \
    --out "$DEMO_DIR/autoencoder"   # a small latent that 300 latent-diffusion steps can learn (see the file)
hsigen condition "$DEMO_DIR/dataset" --kinds content --encoder "$DEMO_DIR/autoencoder" \
    --out "$DEMO_DIR/conditions-encoder"   # content = pooled statistics of each patch's own VAE latent

step "8. HSIGene latent diffusion with composable control: UNet + ControlNet on the VAE's latents (hed + seg)"
hsigen train-diffusion --space latent --autoencoder "$DEMO_DIR/autoencoder" --dataset "$DEMO_DIR/dataset" \
    --conditions "$DEMO_DIR/conditions" --kinds hed,seg --steps 300 --out "$DEMO_DIR/latent-model"
# A held-out (val) patch's own seg + hed maps steer the samples; the kind comes from the folder name.
val_patch=$(python3 -c "import json,sys; items=json.load(open(sys.argv[1]))['items']; print(next(i['files']['seg'] for i in items if i.get('split')=='val'))" "$DEMO_DIR/conditions/index.json")
hsigen sample --ckpt "$DEMO_DIR/latent-model" --cond "$DEMO_DIR/conditions/$val_patch" \
    --cond "$DEMO_DIR/conditions/${val_patch/seg/hed}" -n 4 --steps 25 --guidance 2 --out "$DEMO_DIR/latent-samples"

step "8b. SpecDM labelled synthesis: two-stream VAE (HSI + ground-truth mask), joint latent diffusion, labelled samples"
hsigen train-ae "$DEMO_DIR/dataset" --kind two-stream --preset tiny --steps 150 --model-config examples/demo-two-stream.yaml \
    --out "$DEMO_DIR/two-stream-ae"
hsigen train-diffusion --space joint --autoencoder "$DEMO_DIR/two-stream-ae" --dataset "$DEMO_DIR/dataset" \
    --preset tiny --steps 300 --out "$DEMO_DIR/joint-model"
hsigen sample --ckpt "$DEMO_DIR/joint-model" -n 8 --steps 25 --out "$DEMO_DIR/labelled-samples"

step "8c. evaluate all three generated sets against the train rows, beside reference rows built from the scene"
# References: real-heldout (the val rows: the ceiling), shuffled and Gaussian pixels, and each latent/joint
# model's autoencoder on the val rows; metrics: sPr/sRec, density/coverage, F_p/D_b, SD, spectral FID,
# spatial (power spectra, gradients), patch FD; a verdict per set.
hsigen evaluate --real "$DEMO_DIR/dataset" --generated "$DEMO_DIR/abundance-samples" "$DEMO_DIR/latent-samples" \
    "$DEMO_DIR/labelled-samples" --classifier "$DEMO_DIR/classifier" --out "$DEMO_DIR/evaluation"

step "9. RGAN x2 super-resolution (RGB-guided) and the super-resolution augmentation of the scene"
hsigen upsample train-rgan "$DEMO_DIR/dataset" --scale 2 --preset tiny --out "$DEMO_DIR/rgan-x2"
hsigen upsample run "$DEMO_DIR/dataset" --rgan "$DEMO_DIR/rgan-x2" --size 64 --stride 32 --val-fraction 0.25 \
    --out "$DEMO_DIR/dataset-x2"

step "10. DSRNet x2 (diffusion RGB SR), then the two-stage path: DSRNet's HR RGB guides RGAN (hsigene Fig. 4)"
hsigen upsample train-dsr "$DEMO_DIR/dataset" --scale 2 --preset tiny --ae-steps 100 --steps 200 --sample-steps 10 \
    --out "$DEMO_DIR/dsr-x2"
hsigen upsample run "$DEMO_DIR/dataset" --dsr "$DEMO_DIR/dsr-x2" --rgan "$DEMO_DIR/rgan-x2" \
    --size 64 --stride 32 --val-fraction 0.25 --out "$DEMO_DIR/dataset-x2-dsr"

cat >&2 <<MSG

Done in $((SECONDS - start)) s. Where to look:
  $DEMO_DIR/pretrained/*/previews/               samples of the shipped pretrained models (hsigen pretrained);
                                                 (latent, labelled: through the scene's spectral manifold; *-raw: without it)
  $DEMO_DIR/pretrained/evaluation/report.md      their metrics against the real scene, beside reference rows
  -- everything below was trained by this demo in minutes (short runs: expect less realistic samples) --
  $DEMO_DIR/dataset/preview.png                  false-colour preview of the aligned real scene
  $DEMO_DIR/unmixing/endmembers.png              the 5 VCA endmember spectra
  $DEMO_DIR/abundance-samples/previews/          false-colour previews of the generated HSIs
  $DEMO_DIR/abundance-samples/samples/           one 48-band GeoTIFF per sample (physical units)
  $DEMO_DIR/evaluation/report.md                 metrics, reference rows, verdicts and figures, real vs generated
  $DEMO_DIR/downstream-denoise/figures/downstream.png  denoiser PSNR/SSIM/SAM: real vs real + synthetic (report.md)
  $DEMO_DIR/conditions/                          hed/ mlsd/ sketch/ seg/ maps per patch
  $DEMO_DIR/autoencoder/reconstructions.png      VAE reconstructions vs real
  $DEMO_DIR/latent-samples/previews/             conditional samples (the conditions used sit in samples/)
  $DEMO_DIR/labelled-samples/previews/           generated HSIs with their generated label masks overlaid
  $DEMO_DIR/dataset-x2/preview.png               the scene super-resolved x2 by RGAN (bicubic RGB guidance)
  $DEMO_DIR/dsr-x2/examples.png                  DSRNet x2 RGB super-resolution vs bicubic and the truth
  $DEMO_DIR/dataset-x2-dsr/preview.png           the scene x2 by DSRNet + RGAN
  hsigen inspect DIR                             any artifact's manifest (config, hashes, metrics)
MSG
